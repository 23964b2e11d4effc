// Package indexes runs the warehouse's query for orders waiting to ship, on
// the orders table as the shop first built it: with no index on status. The
// database reads every order to find the few pending ones, so the query's cost
// grows with the table, not with its answer.
//
// Compare with works-vs-scales/scalable/indexes: the same query, and the index
// it needs.
package indexes

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// OldestPendingOrders returns the limit oldest orders still pending, oldest
// first: the warehouse's work queue.
//
// A limit outside 1 to shop.MaxPageSize is refused with shop.ErrInvalidPage.
func OldestPendingOrders(ctx context.Context, db *pgxpool.Pool, limit int) ([]shop.Order, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, fmt.Errorf("oldest pending orders: %w", err)
	}
	// No index has status: a sequential scan of orders and a top-N sort.
	const pendingQuery = `SELECT id, user_id, status, created_at FROM orders
		WHERE status = 'pending'
		ORDER BY created_at, id
		LIMIT $1`
	rows, err := db.Query(ctx, pendingQuery, limit)
	if err != nil {
		return nil, fmt.Errorf("oldest %d pending orders: %w", limit, err)
	}
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Order, error) {
		var o shop.Order
		err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("oldest %d pending orders: %w", limit, err)
	}
	return orders, nil
}
