// Package indexes runs the warehouse's query for orders waiting to ship with
// the index it needs: the query's cost follows its answer (50 rows), not the
// table (a million).
//
// Compare with works-vs-scales/naive/indexes: the same query, without the index.
package indexes

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// PendingOrdersIndex is the index OldestPendingOrders needs: the column its
// WHERE tests for equality first, then the columns of its ORDER BY, in order.
// The database finds the first pending order in the index and reads on in
// order until it has enough: no scan of the table, no sort.
//
// On a live table, build it with CREATE INDEX CONCURRENTLY, which does not
// block writes while it builds (but cannot run inside a transaction).
const PendingOrdersIndex = `CREATE INDEX orders_status_created_at_idx ON orders (status, created_at, id)`

// AddIndexes creates the indexes this package's queries need.
func AddIndexes(ctx context.Context, db *pgxpool.Pool) error {
	if _, err := db.Exec(ctx, PendingOrdersIndex); err != nil {
		return fmt.Errorf("create the pending orders index: %w", err)
	}
	return nil
}

// OldestPendingOrders returns the limit oldest orders still pending, oldest
// first: the warehouse's work queue.
//
// A limit outside 1 to shop.MaxPageSize is refused with shop.ErrInvalidPage.
func OldestPendingOrders(ctx context.Context, db *pgxpool.Pool, limit int) ([]shop.Order, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, fmt.Errorf("oldest pending orders: %w", err)
	}
	// Uses orders_status_created_at_idx (status, created_at, id): one index
	// range, already in ORDER BY order, stopped by the LIMIT.
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
