package writes

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ImportOrders inserts the orders, with their ids, and their items: an
// INSERT per row, each committed on its own.
//
// A bad order, malformed or naming a user or product the shop does not have,
// stops the import with a [shop.RowError] naming it; the orders before it
// stay imported, and so does the bad order itself, with the items before the
// bad one, when what is bad is an item's product.
func ImportOrders(ctx context.Context, db *pgxpool.Pool, orders []shop.Order) error {
	for i, o := range orders {
		if err := shop.CheckImportedOrder(o); err != nil {
			return fmt.Errorf("import order %d of %d, %d imported before it: %w", i+1, len(orders), i, badRow(i+1, err))
		}
		const insertOrder = `INSERT INTO orders (id, user_id, status, created_at) VALUES ($1, $2, $3, $4)`
		if _, err := db.Exec(ctx, insertOrder, o.ID, o.UserID, o.Status, o.CreatedAt); err != nil {
			return fmt.Errorf("import order %d of %d, %d imported before it: %w", i+1, len(orders), i, rowError(i+1, err))
		}
		for _, item := range o.Items {
			const insertItem = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents) VALUES ($1, $2, $3, $4, $5)`
			if _, err := db.Exec(ctx, insertItem, o.ID, item.LineNo, item.Product.ID, item.Quantity, item.PriceCents); err != nil {
				return fmt.Errorf("import order %d of %d, %d imported before it: %w", i+1, len(orders), i, rowError(i+1, err))
			}
		}
	}
	return nil
}

// rowError returns err as a [shop.RowError] naming row if the database
// refused the row for its content (SQLSTATE class 23, integrity constraint
// violation: a duplicate id, an unknown user or product), err otherwise.
func rowError(row int, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "23" {
		return badRow(row, fmt.Errorf("%s: %s", pgErr.Message, pgErr.Detail))
	}
	return err
}

func badRow(row int, err error) error {
	return &shop.RowError{Rows: []shop.BadRow{{Row: row, Reason: err.Error()}}}
}
