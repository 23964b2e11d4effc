// Package partitioning is lesson 19's exercise: yours to change.
//
// It keeps the order history the way naive/partitioning does: one table, and
// retention by one DELETE. Change CreateTables, PrepareMonths and DeleteBefore
// so that retention leaves no dead tuple and no bloat behind, and last week's
// orders are read from their own month, not from the whole history. Then
// check:
//
//	go test -tags exercise -run Exercise19 ./bench/partitioning
//
// The check creates your tables in a copy of the shop, fills two years of
// orders (history.orders: id, user_id, total_cents, created_at; and
// history.order_items: order_id, created_at, line_no, product_id,
// price_cents), reads the plan of last week's orders per day (how many of
// your partitions it reads), removes the first year with DeleteBefore, and
// counts the dead tuples and bytes it left (pg_stat_user_tables). DELETE in
// batches still leaves every row dead; a partition key the week's query does
// not filter on prunes nothing. One answer is in
// works-vs-scales/scalable/partitioning.
package partitioning

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CreateTables creates history.orders and history.order_items.
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
			order_id    bigint      NOT NULL,
			created_at  timestamptz NOT NULL,
			line_no     integer     NOT NULL,
			product_id  bigint      NOT NULL,
			price_cents bigint      NOT NULL,
			PRIMARY KEY (order_id, line_no)
		);
		CREATE INDEX orders_created_at_idx ON history.orders (created_at);`
	if _, err := db.Exec(ctx, createTables); err != nil {
		return fmt.Errorf("create the order history: %w", err)
	}
	return nil
}

// PrepareMonths makes the months from from up to to (first instants of
// months, UTC) ready for orders, before the check fills them.
func PrepareMonths(ctx context.Context, db *pgxpool.Pool, from, to time.Time) error {
	return nil
}

// DeleteBefore removes every order placed before cutoff (the first instant of
// a month, UTC), with its items, and returns how many orders it removed.
func DeleteBefore(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	var removed int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM history.order_items WHERE created_at < $1`, cutoff); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM history.orders WHERE created_at < $1`, cutoff)
		removed = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete orders before %v: %w", cutoff, err)
	}
	return removed, nil
}
