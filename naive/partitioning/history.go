package partitioning

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop/history"
)

// CreateTables creates the order history in the schema history: one orders
// table and its items, keyed by id, with a B-tree on created_at for the
// recent-data queries and one on a user's orders, newest first, for the pages.
func CreateTables(ctx context.Context, db *pgxpool.Pool) error {
	const createTables = `
		CREATE SCHEMA history;
		CREATE TABLE history.orders (
			id          bigint      PRIMARY KEY,
			user_id     bigint      NOT NULL,
			total_cents bigint      NOT NULL,
			created_at  timestamptz NOT NULL
		);
		CREATE TABLE history.order_items (
			order_id    bigint      NOT NULL REFERENCES history.orders (id),
			created_at  timestamptz NOT NULL, -- the order's, as on the scalable side
			line_no     integer     NOT NULL,
			product_id  bigint      NOT NULL,
			price_cents bigint      NOT NULL,
			PRIMARY KEY (order_id, line_no)
		);
		CREATE INDEX orders_created_at_idx ON history.orders (created_at);
		CREATE INDEX orders_user_id_created_at_idx ON history.orders (user_id, created_at DESC, id DESC);`
	if _, err := db.Exec(ctx, createTables); err != nil {
		return fmt.Errorf("create the order history: %w", err)
	}
	return nil
}

// PrepareMonths makes the months from from up to to ready for orders. One
// table takes any month: it only checks its input.
func PrepareMonths(ctx context.Context, db *pgxpool.Pool, from, to time.Time) error {
	_, err := history.MonthsBetween(from, to)
	return err
}

// OrdersPerDay returns the orders of each day in [from, to) that had any,
// oldest first. It uses orders_created_at_idx, whose size grows with every
// year kept, whichever week is asked for.
func OrdersPerDay(ctx context.Context, db *pgxpool.Pool, from, to time.Time) ([]history.DayCount, error) {
	return history.OrdersPerDay(ctx, db, from, to)
}

// DeleteBefore removes every order placed before cutoff, the first instant of
// a month, with its items, in one transaction, and returns how many orders it
// removed. Every removed row is a dead tuple until VACUUM comes, and every
// one is written to the WAL (and so to every replica).
func DeleteBefore(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	if err := history.CheckMonthStart(cutoff); err != nil {
		return 0, err
	}
	var removed int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		const deleteItems = `DELETE FROM history.order_items WHERE created_at < $1`
		if _, err := tx.Exec(ctx, deleteItems, cutoff); err != nil {
			return err
		}
		const deleteOrders = `DELETE FROM history.orders WHERE created_at < $1`
		tag, err := tx.Exec(ctx, deleteOrders, cutoff)
		removed = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete orders before %v: %w", cutoff, err)
	}
	return removed, nil
}

// UserOrdersPage returns up to limit of the user's orders older than the
// order (beforeAt, beforeID), newest first: lesson 2's keyset page. Start
// with a zero beforeAt.
func UserOrdersPage(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) ([]history.Order, error) {
	return history.UserOrdersPage(ctx, db, userID, beforeAt, beforeID, limit)
}
