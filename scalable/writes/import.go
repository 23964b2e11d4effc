package writes

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ImportOrders inserts the orders, with their ids, and their items, all or
// none: a COPY of the orders and a COPY of their items, in one transaction.
// The rows stream to the server without waiting for an answer, so the import
// costs four round trips (BEGIN, two COPYs, COMMIT) and one commit, whatever
// the rows.
//
// A bad order, malformed or naming a user or product the shop does not have
// or an id it already has, refuses the import with a [shop.RowError] naming
// every bad order; nothing is written.
func ImportOrders(ctx context.Context, db *pgxpool.Pool, orders []shop.Order) error {
	if err := check(orders); err != nil {
		return fmt.Errorf("import %d orders, none written: %w", len(orders), err)
	}
	if len(orders) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"orders"}, orderColumns, pgx.CopyFromRows(orderRows(orders))); err != nil {
			return fmt.Errorf("copy the orders: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"order_items"}, itemColumns, pgx.CopyFromRows(itemRows(orders))); err != nil {
			return fmt.Errorf("copy their items: %w", err)
		}
		return nil
	})
	return refused(ctx, db, orders, err)
}

var (
	orderColumns = []string{"id", "user_id", "status", "created_at"}
	itemColumns  = []string{"order_id", "line_no", "product_id", "quantity", "price_cents"}
)

func orderRows(orders []shop.Order) [][]any {
	rows := make([][]any, len(orders))
	for i, o := range orders {
		rows[i] = []any{o.ID, o.UserID, o.Status, o.CreatedAt}
	}
	return rows
}

func itemRows(orders []shop.Order) [][]any {
	var rows [][]any
	for _, o := range orders {
		for _, item := range o.Items {
			rows = append(rows, []any{o.ID, item.LineNo, item.Product.ID, item.Quantity, item.PriceCents})
		}
	}
	return rows
}

// check returns a [shop.RowError] naming every order that Go can tell is bad
// without asking the database (malformed, or an id given twice), or nil.
func check(orders []shop.Order) error {
	var bad []shop.BadRow
	seen := make(map[int64]int, len(orders))
	for i, o := range orders {
		if err := shop.CheckImportedOrder(o); err != nil {
			bad = append(bad, shop.BadRow{Row: i + 1, Reason: err.Error()})
			continue
		}
		if first, ok := seen[o.ID]; ok {
			bad = append(bad, shop.BadRow{Row: i + 1, Reason: fmt.Sprintf("order id %d: given before, as row %d", o.ID, first)})
			continue
		}
		seen[o.ID] = i + 1
	}
	if len(bad) > 0 {
		return &shop.RowError{Rows: bad}
	}
	return nil
}

// refused is refusedRows for an import: an id the shop has already is a bad
// row.
func refused(ctx context.Context, db *pgxpool.Pool, orders []shop.Order, err error) error {
	return refusedRows(ctx, db, orders, err, true)
}

// refusedRows returns nil if err is nil; if the database refused the orders'
// rows for their content (SQLSTATE class 23, integrity constraint violation),
// a [shop.RowError] naming the bad orders, found by one more query; err
// otherwise. The transaction that failed has written nothing. An id the shop
// has already is bad if existingIsBad (an import), not otherwise (an upsert).
func refusedRows(ctx context.Context, db *pgxpool.Pool, orders []shop.Order, err error, existingIsBad bool) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 || pgErr.Code[:2] != "23" {
		return fmt.Errorf("import %d orders, none written: %w", len(orders), err)
	}
	bad, diagErr := badOrders(ctx, db, orders, existingIsBad)
	if diagErr != nil || len(bad) == 0 { // a row another writer just added or removed
		return fmt.Errorf("import %d orders, none written: %w", len(orders), errors.Join(err, diagErr))
	}
	return fmt.Errorf("import %d orders, none written: %w", len(orders), &shop.RowError{Rows: bad})
}

// badOrders returns the orders whose user or products the shop does not
// have, and, if existingIsBad, whose id it already has: their place in
// orders, from 1, in one query.
func badOrders(ctx context.Context, db *pgxpool.Pool, orders []shop.Order, existingIsBad bool) ([]shop.BadRow, error) {
	const findBadOrders = `
		WITH o AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS o (id, user_id, row_no)),
		     i AS (SELECT * FROM unnest($3::bigint[], $4::int[], $5::bigint[]) AS i (row_no, line_no, product_id))
		SELECT row_no, format('user %s not found', user_id) FROM o
		 WHERE NOT EXISTS (SELECT FROM users u WHERE u.id = o.user_id)
		UNION ALL
		SELECT row_no, format('order id %s: the shop has it already', id) FROM o
		 WHERE $6 AND EXISTS (SELECT FROM orders x WHERE x.id = o.id)
		UNION ALL
		SELECT row_no, format('line %s: product %s not found', line_no, product_id) FROM i
		 WHERE NOT EXISTS (SELECT FROM products p WHERE p.id = i.product_id)
		ORDER BY 1, 2`
	ids := make([]int64, len(orders))
	userIDs := make([]int64, len(orders))
	var itemRowNos, productIDs []int64
	var lineNos []int32
	for i, o := range orders {
		ids[i], userIDs[i] = o.ID, o.UserID
		for _, item := range o.Items {
			itemRowNos = append(itemRowNos, int64(i+1))
			lineNos = append(lineNos, item.LineNo)
			productIDs = append(productIDs, item.Product.ID)
		}
	}
	rows, err := db.Query(ctx, findBadOrders, ids, userIDs, itemRowNos, lineNos, productIDs, existingIsBad)
	if err != nil {
		return nil, fmt.Errorf("find the bad orders: %w", err)
	}
	bad, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.BadRow, error) {
		var b shop.BadRow
		var rowNo int64
		err := row.Scan(&rowNo, &b.Reason)
		b.Row = int(rowNo)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("find the bad orders: %w", err)
	}
	return bad, nil
}
