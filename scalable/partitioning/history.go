package partitioning

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop/history"
)

// CreateTables creates the order history in the schema history: orders and
// their items partitioned by month of created_at, with no month yet (see
// PrepareMonths). A key on a partitioned table must hold the partition key, so
// the orders' primary key is (id, created_at); and no foreign key joins the
// items to their orders, as one would make every DETACH check every item
// left. There is no B-tree on created_at: the months are the index.
func CreateTables(ctx context.Context, db *pgxpool.Pool) error {
	const createTables = `
		CREATE SCHEMA history;
		CREATE TABLE history.orders (
			id          bigint      NOT NULL,
			user_id     bigint      NOT NULL,
			total_cents bigint      NOT NULL,
			created_at  timestamptz NOT NULL,
			PRIMARY KEY (id, created_at)
		) PARTITION BY RANGE (created_at);
		CREATE TABLE history.order_items (
			order_id    bigint      NOT NULL,
			created_at  timestamptz NOT NULL, -- the order's: the partition key
			line_no     integer     NOT NULL,
			product_id  bigint      NOT NULL,
			price_cents bigint      NOT NULL,
			PRIMARY KEY (order_id, created_at, line_no)
		) PARTITION BY RANGE (created_at);
		CREATE INDEX orders_user_id_created_at_idx ON history.orders (user_id, created_at DESC, id DESC);`
	if _, err := db.Exec(ctx, createTables); err != nil {
		return fmt.Errorf("create the order history: %w", err)
	}
	return nil
}

// PrepareMonths creates the partitions of orders and items for each month
// from from up to to (first instants of months, UTC), those that do not exist
// yet. Run it ahead of time, say daily for this month and the next two
// (MonthsAhead): an order for a month without a partition is refused (or,
// with a default partition, swallowed by it).
func PrepareMonths(ctx context.Context, db *pgxpool.Pool, from, to time.Time) error {
	months, err := history.MonthsBetween(from, to)
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	for _, m := range months {
		for _, table := range []string{"orders", "order_items"} {
			// Names and bounds come from time.Time, not from a caller's text.
			batch.Queue(fmt.Sprintf(`CREATE TABLE IF NOT EXISTS history.%s PARTITION OF history.%s
				FOR VALUES FROM ('%s') TO ('%s')`,
				partitionName(table, m), table, m.Format(boundLayout), m.AddDate(0, 1, 0).Format(boundLayout)))
		}
	}
	if err := db.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("prepare months %v to %v: %w", from, to, err)
	}
	return nil
}

// MonthsAhead returns the range PrepareMonths makes ready on a day now: the
// month of now and the n after it.
func MonthsAhead(now time.Time, n int) (from, to time.Time, err error) {
	if now.IsZero() {
		return time.Time{}, time.Time{}, fmt.Errorf("months ahead of %v: %w", now, history.ErrZeroTime)
	}
	if n < 0 || n >= history.MaxMonths {
		return time.Time{}, time.Time{}, fmt.Errorf("%d months ahead: %w", n, history.ErrRangeTooLong)
	}
	now = now.UTC()
	from = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return from, from.AddDate(0, n+1, 0), nil
}

const boundLayout = "2006-01-02 15:04:05+00"

// partitionName is the name of table's partition for month m, e.g. orders_p2021_01.
func partitionName(table string, m time.Time) string {
	return fmt.Sprintf("%s_p%04d_%02d", table, m.Year(), int(m.Month()))
}

// OrdersPerDay returns the orders of each day in [from, to) that had any,
// oldest first. The planner reads only the months the range touches
// (partition pruning), whatever number of years are kept.
func OrdersPerDay(ctx context.Context, db *pgxpool.Pool, from, to time.Time) ([]history.DayCount, error) {
	return history.OrdersPerDay(ctx, db, from, to)
}

// DeleteBefore removes every order placed before cutoff, the first instant of
// a month, with its items, and returns how many orders it removed: each
// month's partitions are counted, detached CONCURRENTLY (readers and writers
// of the other months go on) and dropped. Nothing is deleted row by row, so
// nothing is left for VACUUM and the WAL holds only the catalog's changes.
func DeleteBefore(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	if err := history.CheckMonthStart(cutoff); err != nil {
		return 0, err
	}
	const oldMonthsQuery = `
		SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'history.orders'::regclass AND c.relname < $1
		ORDER BY c.relname`
	rows, err := db.Query(ctx, oldMonthsQuery, partitionName("orders", cutoff.UTC()))
	if err != nil {
		return 0, fmt.Errorf("months before %v: %w", cutoff, err)
	}
	old, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("months before %v: %w", cutoff, err)
	}
	var removed int64
	for _, orders := range old {
		items := "order_items" + orders[len("orders"):]
		var n int64
		if err := db.QueryRow(ctx, "SELECT count(*) FROM history."+orders).Scan(&n); err != nil {
			return removed, fmt.Errorf("count %s: %w", orders, err)
		}
		// DETACH … CONCURRENTLY runs in two transactions of its own: never
		// inside one of ours, and never with a default partition.
		for _, sql := range []string{
			"ALTER TABLE history.order_items DETACH PARTITION history." + items + " CONCURRENTLY",
			"DROP TABLE history." + items,
			"ALTER TABLE history.orders DETACH PARTITION history." + orders + " CONCURRENTLY",
			"DROP TABLE history." + orders,
		} {
			if _, err := db.Exec(ctx, sql); err != nil {
				return removed, fmt.Errorf("retention before %v: %s: %w", cutoff, sql, err)
			}
		}
		removed += n
	}
	return removed, nil
}

// UserOrdersPage returns up to limit of the user's orders older than the
// order (beforeAt, beforeID), newest first: lesson 2's keyset page. Start
// with a zero beforeAt. The query names no month, so it opens the user index
// of every partition (a Merge Append reads the newest first): its planning
// grows with the months kept.
func UserOrdersPage(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) ([]history.Order, error) {
	return history.UserOrdersPage(ctx, db, userID, beforeAt, beforeID, limit)
}
