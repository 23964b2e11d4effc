package partitioning

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The errors every function returns for input it refuses, before it asks the
// database anything.
var (
	ErrZeroTime      = errors.New("partitioning: zero time")
	ErrEmptyRange    = errors.New("partitioning: range ends before it starts")
	ErrRangeTooLong  = errors.New("partitioning: range too long")
	ErrNotMonthStart = errors.New("partitioning: not the first instant of a month, UTC")
	ErrBadLimit      = errors.New("partitioning: page size out of range")
)

// MaxDays is the longest range OrdersPerDay answers; MaxMonths the most
// months PrepareMonths makes ready at once; MaxPage the largest page.
const (
	MaxDays   = 366
	MaxMonths = 1200
	MaxPage   = 1000
)

// DayCount is one day's orders and what they came to.
type DayCount struct {
	Day          time.Time // midnight UTC
	Orders       int64
	RevenueCents int64
}

// Order is one row of a user's page of orders.
type Order struct {
	ID         int64
	UserID     int64
	TotalCents int64
	CreatedAt  time.Time
}

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
	months, err := monthsBetween(from, to)
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
		return time.Time{}, time.Time{}, fmt.Errorf("months ahead of %v: %w", now, ErrZeroTime)
	}
	if n < 0 || n >= MaxMonths {
		return time.Time{}, time.Time{}, fmt.Errorf("%d months ahead: %w", n, ErrRangeTooLong)
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
func OrdersPerDay(ctx context.Context, db *pgxpool.Pool, from, to time.Time) ([]DayCount, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	const perDayQuery = `
		SELECT date_trunc('day', created_at, 'UTC'), count(*), sum(total_cents)
		FROM history.orders
		WHERE created_at >= $1 AND created_at < $2
		GROUP BY 1 ORDER BY 1`
	rows, err := db.Query(ctx, perDayQuery, from, to)
	if err != nil {
		return nil, fmt.Errorf("orders per day from %v to %v: %w", from, to, err)
	}
	days, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DayCount, error) {
		var d DayCount
		err := row.Scan(&d.Day, &d.Orders, &d.RevenueCents)
		d.Day = d.Day.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("orders per day from %v to %v: %w", from, to, err)
	}
	return days, nil
}

// DeleteBefore removes every order placed before cutoff, the first instant of
// a month, with its items, and returns how many orders it removed: each
// month's partitions are counted, detached CONCURRENTLY (readers and writers
// of the other months go on) and dropped. Nothing is deleted row by row, so
// nothing is left for VACUUM and the WAL holds only the catalog's changes.
func DeleteBefore(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	if err := checkMonthStart(cutoff); err != nil {
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
func UserOrdersPage(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) ([]Order, error) {
	if limit < 1 || limit > MaxPage {
		return nil, fmt.Errorf("page of %d orders of user %d: %w", limit, userID, ErrBadLimit)
	}
	if beforeAt.IsZero() {
		beforeAt, beforeID = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 0
	}
	const pageQuery = `
		SELECT id, user_id, total_cents, created_at FROM history.orders
		WHERE user_id = $1 AND (created_at, id) < ($2, $3)
		ORDER BY created_at DESC, id DESC LIMIT $4`
	rows, err := db.Query(ctx, pageQuery, userID, beforeAt, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("page of orders of user %d: %w", userID, err)
	}
	orders, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Order])
	if err != nil {
		return nil, fmt.Errorf("page of orders of user %d: %w", userID, err)
	}
	return orders, nil
}

func checkRange(from, to time.Time) error {
	switch {
	case from.IsZero() || to.IsZero():
		return fmt.Errorf("range %v to %v: %w", from, to, ErrZeroTime)
	case !to.After(from):
		return fmt.Errorf("range %v to %v: %w", from, to, ErrEmptyRange)
	case to.Sub(from) > MaxDays*24*time.Hour:
		return fmt.Errorf("range %v to %v, longer than %d days: %w", from, to, MaxDays, ErrRangeTooLong)
	}
	return nil
}

func checkMonthStart(t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("month %v: %w", t, ErrZeroTime)
	}
	if !t.Equal(time.Date(t.UTC().Year(), t.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)) {
		return fmt.Errorf("month %v: %w", t, ErrNotMonthStart)
	}
	return nil
}

// monthsBetween returns the first instants of the months from from up to
// to, both first instants of a month.
func monthsBetween(from, to time.Time) ([]time.Time, error) {
	if err := checkMonthStart(from); err != nil {
		return nil, err
	}
	if err := checkMonthStart(to); err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, fmt.Errorf("months %v to %v: %w", from, to, ErrEmptyRange)
	}
	from, to = from.UTC(), to.UTC()
	n := (to.Year()-from.Year())*12 + int(to.Month()-from.Month())
	if n > MaxMonths {
		return nil, fmt.Errorf("%d months from %v, more than %d: %w", n, from, MaxMonths, ErrRangeTooLong)
	}
	months := make([]time.Time, n)
	for i := range months {
		months[i] = from.AddDate(0, i, 0)
	}
	return months, nil
}
