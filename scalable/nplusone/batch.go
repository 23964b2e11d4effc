package nplusone

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// GetUserOrdersBatch returns what GetUserOrders returns, with the naive
// version's queries sent as two batches: the user and their orders, then every
// order's items.
//
// Still 2+N statements for N orders, but two round trips: the middle road when
// the queries cannot be joined (another service's tables, a query you may not
// change), at the cost of the database running N small queries.
func GetUserOrdersBatch(ctx context.Context, db *pgxpool.Pool, userID int64) (shop.UserOrders, error) {
	// Uses users_pkey.
	const userQuery = `SELECT id, name, email, phone, created_at FROM users WHERE id = $1`
	// Uses orders_user_id_created_at_idx (user_id, created_at DESC, id DESC).
	const ordersQuery = `SELECT id, user_id, status, created_at FROM orders
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC`
	// Uses order_items_pkey (order_id, line_no) and products_pkey.
	const itemsQuery = `SELECT i.line_no, i.quantity, i.price_cents, p.id, p.name, p.category, p.price_cents
		FROM order_items i JOIN products p ON p.id = i.product_id
		WHERE i.order_id = $1 ORDER BY i.line_no`

	var result shop.UserOrders
	first := &pgx.Batch{}
	first.Queue(userQuery, userID).QueryRow(func(row pgx.Row) error {
		u := &result.User
		return row.Scan(&u.ID, &u.Name, &u.Email, &u.Phone, &u.CreatedAt)
	})
	first.Queue(ordersQuery, userID).Query(func(rows pgx.Rows) error {
		orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Order, error) {
			var o shop.Order
			err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt)
			return o, err
		})
		result.Orders = orders
		return err
	})
	err := db.SendBatch(ctx, first).Close()
	if errors.Is(err, pgx.ErrNoRows) {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, shop.ErrUserNotFound)
	}
	if err != nil {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	if len(result.Orders) == 0 {
		return result, nil
	}

	items := &pgx.Batch{}
	for i := range result.Orders {
		order := &result.Orders[i]
		items.Queue(itemsQuery, order.ID).Query(func(rows pgx.Rows) error {
			var err error
			order.Items, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.OrderItem, error) {
				var it shop.OrderItem
				err := row.Scan(&it.LineNo, &it.Quantity, &it.PriceCents,
					&it.Product.ID, &it.Product.Name, &it.Product.Category, &it.Product.PriceCents)
				return it, err
			})
			if err != nil {
				return fmt.Errorf("items of order %d: %w", order.ID, err)
			}
			return nil
		})
	}
	if err := db.SendBatch(ctx, items).Close(); err != nil {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	return result, nil
}
