package partitioning

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// ErrLockTimeout is returned, wrapped with the month and the server's last
// error, when PrepareMonths could not lock the parent tables within
// lock_timeout on any of its attempts.
var ErrLockTimeout = errors.New("partitioning: the history's lock not granted within lock_timeout")

// PrepareMonths creates the partitions of orders and items for each month
// from from up to to (first instants of months, UTC, in the years 1 to 9999),
// those that do not exist yet. Run it ahead of time, say daily for this month
// and the next two (MonthsAhead): an order for a month without a partition is
// refused (or, with a default partition, swallowed by it).
//
// CREATE TABLE … PARTITION OF would take an ACCESS EXCLUSIVE lock on the
// parent: queued behind one long reader, it would queue every later reader
// and writer of the history behind itself (lesson 20). Each month is instead
// created as a table of its own, given a CHECK of its bounds (so that the
// ATTACH need not read it) and attached, which takes only a SHARE UPDATE
// EXCLUSIVE lock on the parent: readers and writers go on. The ATTACH still
// waits for a VACUUM, an index build or a DDL on the parent; it waits at most
// lock_timeout (prepareLockTimeout), prepareAttempts times, then gives up with
// ErrLockTimeout. Each month is one transaction, under an advisory lock that
// makes two PrepareMonths at once take turns; a month already made is left
// as it is.
func PrepareMonths(ctx context.Context, db *pgxpool.Pool, from, to time.Time) error {
	months, err := history.MonthsBetween(from, to)
	if err != nil {
		return err
	}
	for _, m := range months {
		for _, table := range []string{"orders", "order_items"} {
			if err := attachMonth(ctx, db, table, m); err != nil {
				return fmt.Errorf("prepare months %v to %v: %w", from, to, err)
			}
		}
	}
	return nil
}

// prepareLockTimeout is the lock_timeout of each attempt of PrepareMonths,
// which makes prepareAttempts of them.
const (
	prepareLockTimeout = "1s"
	prepareAttempts    = 3
)

// prepareLock is the key of the advisory lock PrepareMonths holds while it
// makes a month.
const prepareLock = 19_0001

// attachMonth makes table's partition for month m unless it is there,
// retrying when a lock is not granted within prepareLockTimeout.
func attachMonth(ctx context.Context, db *pgxpool.Pool, table string, m time.Time) error {
	// Names and bounds come from time.Time, not from a caller's text.
	name := partitionName(table, m)
	lo, hi := m.Format(boundLayout), m.AddDate(0, 1, 0).Format(boundLayout)
	steps := []string{
		fmt.Sprintf(`CREATE TABLE history.%s (LIKE history.%s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`, name, table),
		fmt.Sprintf(`ALTER TABLE history.%s ADD CONSTRAINT %s_bounds CHECK (created_at >= '%s' AND created_at < '%s')`, name, name, lo, hi),
		fmt.Sprintf(`ALTER TABLE history.%s ATTACH PARTITION history.%s FOR VALUES FROM ('%s') TO ('%s')`, table, name, lo, hi),
		fmt.Sprintf(`ALTER TABLE history.%s DROP CONSTRAINT %s_bounds`, name, name),
	}
	var err error
	for range prepareAttempts {
		err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			// Twins take turns on the advisory lock first, with no timeout:
			// lock_timeout, set after it, bounds only the waits for the
			// tables (a lock_timeout set before would time out the wait for
			// the twin, which is no lock timeout at all).
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", prepareLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+prepareLockTimeout+"'"); err != nil {
				return err
			}
			const attachedQuery = `SELECT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = to_regclass($1) AND inhparent = $2::regclass)`
			var attached bool
			if err := tx.QueryRow(ctx, attachedQuery, "history."+name, "history."+table).Scan(&attached); err != nil || attached {
				return err
			}
			for _, sql := range steps {
				if _, err := tx.Exec(ctx, sql); err != nil {
					return fmt.Errorf("%s: %w", sql, err)
				}
			}
			return nil
		})
		if pgCode(err) != lockNotAvailable || ctx.Err() != nil {
			break
		}
	}
	switch {
	case err == nil:
		return nil
	case pgCode(err) == lockNotAvailable && ctx.Err() == nil:
		return fmt.Errorf("month %s, %d attempts of %s: %w: %w", name, prepareAttempts, prepareLockTimeout, ErrLockTimeout, err)
	default:
		return fmt.Errorf("month %s: %w", name, err)
	}
}

// lockNotAvailable is the SQLSTATE of a lock not granted within lock_timeout.
const lockNotAvailable = "55P03"

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
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
// month's partitions, chosen by their bounds in the catalog (never a default
// partition), are detached CONCURRENTLY (readers and writers of the other
// months go on), counted and dropped, orders before items. Nothing is deleted
// row by row, so nothing is left for VACUUM and the WAL holds no row, only
// the catalog's changes by the DETACHes and DROPs (much of it full-page
// images of catalog pages); the count reads a month and, once VACUUM has
// been through it, writes none.
//
// A retention interrupted halfway (a cancel, a deploy, a lost connection) is
// finished by the next one: a partition left "detach pending" is detached
// with … FINALIZE, a month before cutoff detached but not dropped is dropped
// (its orders counted) if it has the name PrepareMonths gave it, in schema
// history (orders_pYYYY_MM, order_items_pYYYY_MM: a detached table has no
// bound, so its name is all that dates it; one named otherwise is left), and
// a month whose orders are gone still has its items removed. Two retentions
// at once take turns, under an advisory lock.
// Every name read from the catalog is quoted: a partition's maker chose it.
func DeleteBefore(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	if err := history.CheckMonthStart(cutoff); err != nil {
		return 0, err
	}
	conn, err := db.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("retention before %v: %w", cutoff, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", retentionLock); err != nil {
		return 0, fmt.Errorf("retention before %v: %w", cutoff, err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", retentionLock)
	// The partitions of either parent whose upper bound is at most cutoff,
	// by the bound as the server prints it (MINVALUE and MAXVALUE unquoted;
	// a default partition has none), after the months before cutoff that a
	// past retention detached but did not drop (by the month in the name
	// PrepareMonths gave them: a later month detached for maintenance is
	// not retention's to drop); orders before items.
	const oldMonthsQuery = `
		SELECT parent, schema, name, detach_pending, detached FROM (
			SELECT p.relname AS parent, n.nspname AS schema, c.relname AS name,
				i.inhdetachpending AS detach_pending, false AS detached, u.upper_at
			FROM pg_inherits i
			JOIN pg_class c ON c.oid = i.inhrelid
			JOIN pg_class p ON p.oid = i.inhparent
			JOIN pg_namespace n ON n.oid = c.relnamespace
			CROSS JOIN LATERAL (SELECT substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \((.*)\)$') AS upper) b
			CROSS JOIN LATERAL (SELECT CASE WHEN b.upper LIKE '''%' THEN trim(BOTH '''' FROM b.upper)::timestamptz END AS upper_at) u
			WHERE i.inhparent IN ('history.orders'::regclass, 'history.order_items'::regclass) AND u.upper_at <= $1
			UNION ALL
			SELECT m[1], 'history', c.relname, false, true, NULL
			FROM pg_class c
			CROSS JOIN LATERAL regexp_match(c.relname, '^(orders|order_items)_p([0-9]{4})_(0[1-9]|1[0-2])$') m
			WHERE c.relnamespace = 'history'::regnamespace AND c.relkind = 'r' AND NOT c.relispartition
				AND CASE WHEN m[2] <> '0000' THEN make_timestamptz(m[2]::int, m[3]::int, 1, 0, 0, 0, 'UTC') + interval '1 month' END <= $1
		) old
		ORDER BY detached DESC, upper_at, parent DESC, name`
	rows, err := conn.Query(ctx, oldMonthsQuery, cutoff)
	if err != nil {
		return 0, fmt.Errorf("months before %v: %w", cutoff, err)
	}
	type partition struct {
		Parent, Schema, Name    string
		DetachPending, Detached bool
	}
	old, err := pgx.CollectRows(rows, pgx.RowToStructByPos[partition])
	if err != nil {
		return 0, fmt.Errorf("months before %v: %w", cutoff, err)
	}
	var removed int64
	for _, p := range old {
		// The names are the catalog's, chosen by whoever made the
		// partition: quoted, in the partition's own schema, so that a name
		// is never read as SQL or as another table's.
		parent := pgx.Identifier{"history", p.Parent}.Sanitize()
		month := pgx.Identifier{p.Schema, p.Name}.Sanitize()
		// DETACH … CONCURRENTLY runs in two transactions of its own: never
		// inside one of ours, and never with a default partition.
		switch {
		case p.DetachPending:
			if _, err := conn.Exec(ctx, "ALTER TABLE "+parent+" DETACH PARTITION "+month+" FINALIZE"); err != nil {
				return removed, fmt.Errorf("retention before %v: finish detaching %s: %w", cutoff, month, err)
			}
		case !p.Detached:
			if _, err := conn.Exec(ctx, "ALTER TABLE "+parent+" DETACH PARTITION "+month+" CONCURRENTLY"); err != nil {
				return removed, fmt.Errorf("retention before %v: detach %s: %w", cutoff, month, err)
			}
		}
		// Counted once detached, when no write through the parent can
		// reach it: a late order for the month is counted with the rest.
		var n int64
		if p.Parent == "orders" {
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+month).Scan(&n); err != nil {
				return removed, fmt.Errorf("retention before %v: count %s: %w", cutoff, month, err)
			}
		}
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+month); err != nil {
			return removed, fmt.Errorf("retention before %v: drop %s: %w", cutoff, month, err)
		}
		removed += n
	}
	return removed, nil
}

// retentionLock is the key of the advisory lock DeleteBefore holds.
const retentionLock = 19_0002

// UserOrdersPage returns up to limit of the user's orders older than the
// order (beforeAt, beforeID), newest first: lesson 2's keyset page. Start
// with a zero beforeAt. The query names no month, so it opens the user index
// of every partition (a Merge Append reads the newest first): its planning
// grows with the months kept.
func UserOrdersPage(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) ([]history.Order, error) {
	return history.UserOrdersPage(ctx, db, userID, beforeAt, beforeID, limit)
}
