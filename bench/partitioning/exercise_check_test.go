package partitioning

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/partitioning"
	scalable "works-vs-scales/scalable/partitioning"
	"works-vs-scales/shop"
)

// Lesson 19's exercise, in exercises/partitioning. Its check is here, with the
// wrong answers it must catch and the tests that prove it fails on the
// starting point and on each wrong answer, and passes on the answer; the
// trainee's run of it, TestExercise19, is in exercise_test.go, behind the
// exercise tag.

// retentionAnswer is an answer to the exercise: the three functions it writes.
type retentionAnswer struct {
	createTables  func(context.Context, *pgxpool.Pool) error
	prepareMonths func(context.Context, *pgxpool.Pool, time.Time, time.Time) error
	deleteBefore  func(context.Context, *pgxpool.Pool, time.Time) (int64, error)
}

// checkExercise19 says what is still wrong with an answer to lesson 19's
// exercise, or nil when it is done. On testHistory (two years of orders, two
// items each) in db, a copy of the shop, with autovacuum off on every table
// of the answer's: last week's orders per day must read one partition of the
// several the orders are in, and come back as the lesson's; DeleteBefore the
// second year must remove exactly the first year's orders and items, leave
// no dead tuple (pg_stat_user_tables, flushed), give back at least a third of
// the history's bytes, and write at most maxWALPerOrder bytes of WAL per
// order removed (pg_stat_statements of the database).
func checkExercise19(t testing.TB, db *pgxpool.Pool, answer retentionAnswer) error {
	ctx := context.Background()
	h := testHistory
	if err := answer.createTables(ctx, db); err != nil {
		return fmt.Errorf("your CreateTables: %w", err)
	}
	if err := answer.prepareMonths(ctx, db, h.first, h.end()); err != nil {
		return fmt.Errorf("your PrepareMonths from %v to %v: %w", h.first, h.end(), err)
	}
	// Analyzed, not vacuumed, as the check has always filled them: its WAL
	// bound (maxWALPerOrder) was set on tables filled this way.
	if err := fillOrders(ctx, db, h, "ANALYZE"); err != nil {
		return fmt.Errorf("filling two years of orders into your tables: %w", err)
	}

	// Last week, read from its month.
	from, to := h.lastWeek()
	week, err := scalable.OrdersPerDay(ctx, db, from, to)
	if err != nil {
		return fmt.Errorf("last week's orders per day on your tables: %w", err)
	}
	if len(week) != 7 {
		return fmt.Errorf("last week's orders per day on your tables: %d days, want 7", len(week))
	}
	partitions, err := partitionsOf(ctx, db, "history.orders")
	if err != nil {
		return err
	}
	if len(partitions) < 2 {
		return fmt.Errorf("history.orders is one table (no partitions): last week's orders are read from an index over the whole history, and retention can only DELETE")
	}
	plan, err := pgtest.Explain(ctx, db, pgtest.Query{
		SQL:  "SELECT count(*) FROM history.orders WHERE created_at >= $1 AND created_at < $2",
		Args: []any{from, to},
	})
	if err != nil {
		return err
	}
	read := map[string]bool{}
	plan.Walk(func(p pgtest.Plan) {
		if partitions[p.RelationName] {
			read[p.RelationName] = true
		}
	})
	if len(read) != 1 {
		return fmt.Errorf("last week's orders (WHERE created_at >= $1 AND created_at < $2) read %d of your %d partitions of history.orders: the planner prunes only by the partition key, and the week's query filters on created_at alone",
			len(read), len(partitions))
	}

	// Retention: the first year.
	cutoff := h.first.AddDate(1, 0, 0)
	before, err := historySize(ctx, db)
	if err != nil {
		return err
	}
	one, err := pgxpool.NewWithConfig(ctx, oneConnection(db))
	if err != nil {
		return err
	}
	defer one.Close()
	if _, err := one.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return fmt.Errorf("the check counts WAL with pg_stat_statements, which the server must load (shared_preload_libraries): ask your trainer, lessons/TRAINER.md says how: %w", err)
	}
	walBefore, err := databaseWAL(ctx, one)
	if err != nil {
		return err
	}
	removed, err := answer.deleteBefore(ctx, one, cutoff)
	if err != nil {
		return fmt.Errorf("your DeleteBefore(%v): %w", cutoff, err)
	}
	walAfter, err := databaseWAL(ctx, one)
	if err != nil {
		return err
	}
	wal := walAfter - walBefore
	if want := h.ordersBefore(cutoff); removed != want {
		return fmt.Errorf("your DeleteBefore(%v) says it removed %d orders; the first year holds %d", cutoff, removed, want)
	}
	var orders, items, left int64
	const leftQuery = `SELECT (SELECT count(*) FROM history.orders WHERE created_at < $1),
		(SELECT count(*) FROM history.order_items WHERE created_at < $1),
		(SELECT count(*) FROM history.orders)`
	if err := one.QueryRow(ctx, leftQuery, cutoff).Scan(&orders, &items, &left); err != nil {
		return fmt.Errorf("what your DeleteBefore left: %w", err)
	}
	if orders != 0 || items != 0 || left != int64(h.orders)-removed {
		return fmt.Errorf("after your DeleteBefore(%v): %d orders and %d items before it are left, and %d orders in all (want 0, 0 and %d)",
			cutoff, orders, items, left, int64(h.orders)-removed)
	}
	for _, sql := range []string{"SELECT pg_stat_force_next_flush()", "SELECT 1"} {
		if _, err := one.Exec(ctx, sql); err != nil {
			return err
		}
	}
	if dead := deadTuples(t, one, ""); dead > 0 {
		return fmt.Errorf("your DeleteBefore left %d dead tuples in history (pg_stat_user_tables): a DELETE, in one statement or in batches, leaves every row it removes dead until VACUUM, and writes each to the WAL; drop whole months instead", dead)
	}
	after, err := historySize(ctx, one)
	if err != nil {
		return err
	}
	if after*3 > before*2 {
		return fmt.Errorf("your DeleteBefore removed half the orders, and history still takes %d of its %d bytes: the space of deleted rows is kept for new ones, not given back", after, before)
	}
	// A DELETE writes about 450 bytes of WAL per order here (the order, its
	// two items, their index entries); dropping months writes the catalog's
	// changes, and the hint bits of a count, about a tenth of that.
	if wal > removed*maxWALPerOrder {
		return fmt.Errorf("your DeleteBefore wrote %d bytes of WAL, %d per order removed (at most %d): each row deleted, in batches or not, then vacuumed or not, is written to the WAL, and every replica replays it; drop whole months instead",
			wal, wal/max(removed, 1), maxWALPerOrder)
	}
	t.Logf("last week read 1 of %d partitions; retention removed %d orders, wrote %d bytes of WAL, left no dead tuple, and history went from %d to %d bytes", len(partitions), removed, wal, before, after)
	return nil
}

// maxWALPerOrder is the most WAL an answer's retention may write per order
// it removes.
const maxWALPerOrder = 200

// partitionsOf returns the names of table's leaf partitions.
func partitionsOf(ctx context.Context, db *pgxpool.Pool, table string) (map[string]bool, error) {
	const leavesQuery = `SELECT relid::regclass::text FROM pg_partition_tree($1::regclass) WHERE isleaf AND level > 0`
	rows, err := db.Query(ctx, leavesQuery, table)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	parts := make(map[string]bool, len(names))
	for _, n := range names {
		// EXPLAIN names a relation without its schema.
		_, bare, _ := cutSchema(n)
		parts[bare] = true
	}
	return parts, nil
}

func cutSchema(name string) (schema, bare string, ok bool) {
	for i := range len(name) {
		if name[i] == '.' {
			return name[:i], name[i+1:], true
		}
	}
	return "", name, false
}

// databaseWAL is the WAL written so far by the statements of db's database,
// from pg_stat_statements.
func databaseWAL(ctx context.Context, db *pgxpool.Pool) (int64, error) {
	const walQuery = `
		SELECT coalesce(sum(wal_bytes), 0)::bigint FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`
	var n int64
	if err := db.QueryRow(ctx, walQuery).Scan(&n); err != nil {
		return 0, fmt.Errorf("WAL of the database's statements: %w", err)
	}
	return n, nil
}

// historySize is the bytes of every table and index in history.
func historySize(ctx context.Context, db *pgxpool.Pool) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `
		SELECT coalesce(sum(pg_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'history'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("size of history: %w", err)
	}
	return n, nil
}

func TestExercise19CheckFailsOnTheStart(t *testing.T) {
	// The starting point is the naive side, as exercises/partitioning copies it.
	start := retentionAnswer{naive.CreateTables, naive.PrepareMonths, naive.DeleteBefore}
	err := checkExercise19(t, pgtest.ShopClone(t, shop.Small), start)
	require.ErrorContains(t, err, "history.orders is one table")
	t.Log(err)
}

func TestExercise19CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer retentionAnswer
		want   string
	}{
		{"retention by DELETE in batches, on monthly partitions",
			retentionAnswer{scalable.CreateTables, scalable.PrepareMonths, deleteInBatches}, "dead tuples in history"},
		{"partitions by user, which the week's query never names",
			retentionAnswer{createTablesByUser, noMonths, dropByUserThenDelete}, "read 4 of your 4 partitions"},
		{"one table, DELETE in batches, then VACUUM",
			retentionAnswer{naive.CreateTables, naive.PrepareMonths, deleteInBatchesAndVacuum}, "history.orders is one table"},
		{"monthly partitions, DELETE in batches, then VACUUM",
			// VACUUM removes the dead tuples unless a snapshot elsewhere on the
			// server still needs them (a replica's slot, a long transaction),
			// and gives the emptied months' pages back unless it cannot lock
			// them at once: the check names what is left, the dead tuples, the
			// bytes, else the WAL the deletes wrote. Each fails the answer.
			retentionAnswer{scalable.CreateTables, scalable.PrepareMonths, deleteInBatchesAndVacuum}, "dead tuples in history|not given back|bytes of WAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise19(t, pgtest.ShopClone(t, shop.Small), tc.answer)
			require.Error(t, err)
			require.Regexp(t, tc.want, err.Error())
			t.Log(err)
		})
	}
}

func TestExercise19CheckPassesOnTheAnswer(t *testing.T) {
	answer := retentionAnswer{scalable.CreateTables, scalable.PrepareMonths, scalable.DeleteBefore}
	require.NoError(t, checkExercise19(t, pgtest.ShopClone(t, shop.Small), answer))
}

// deleteInBatches is a wrong answer: DELETE a thousand orders (and their
// items) at a time, each batch its own transaction, so that no lock is held
// long. Every row is still a dead tuple, and still in the WAL.
func deleteInBatches(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	var removed int64
	for {
		const batch = `
			WITH gone AS (
				DELETE FROM history.orders WHERE (id, created_at) IN (
					SELECT id, created_at FROM history.orders WHERE created_at < $1 LIMIT 1000)
				RETURNING id, created_at)
			, items AS (
				DELETE FROM history.order_items i USING gone
				WHERE i.order_id = gone.id AND i.created_at = gone.created_at)
			SELECT count(*) FROM gone`
		var n int64
		if err := db.QueryRow(ctx, batch, cutoff).Scan(&n); err != nil {
			return removed, err
		}
		removed += n
		if n == 0 {
			return removed, nil
		}
	}
}

// deleteInBatchesAndVacuum is deleteInBatches on one table, and a VACUUM
// after it: no dead tuple left, but the space stays the table's.
func deleteInBatchesAndVacuum(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	removed, err := deleteInBatches(ctx, db, cutoff)
	if err != nil {
		return removed, err
	}
	_, err = db.Exec(ctx, "VACUUM history.orders, history.order_items")
	return removed, err
}

// createTablesByUser is a wrong answer: partitions, but by a hash of the
// user, a key the week's query never filters on.
func createTablesByUser(ctx context.Context, db *pgxpool.Pool) error {
	const createTables = `
		CREATE SCHEMA history;
		CREATE TABLE history.orders (
			id bigint NOT NULL, user_id bigint NOT NULL, total_cents bigint NOT NULL, created_at timestamptz NOT NULL,
			PRIMARY KEY (id, user_id)
		) PARTITION BY HASH (user_id);
		CREATE TABLE history.orders_h0 PARTITION OF history.orders FOR VALUES WITH (MODULUS 4, REMAINDER 0);
		CREATE TABLE history.orders_h1 PARTITION OF history.orders FOR VALUES WITH (MODULUS 4, REMAINDER 1);
		CREATE TABLE history.orders_h2 PARTITION OF history.orders FOR VALUES WITH (MODULUS 4, REMAINDER 2);
		CREATE TABLE history.orders_h3 PARTITION OF history.orders FOR VALUES WITH (MODULUS 4, REMAINDER 3);
		CREATE INDEX ON history.orders (created_at);
		CREATE TABLE history.order_items (
			order_id bigint NOT NULL, created_at timestamptz NOT NULL, line_no integer NOT NULL,
			product_id bigint NOT NULL, price_cents bigint NOT NULL, PRIMARY KEY (order_id, line_no)
		);`
	_, err := db.Exec(ctx, createTables)
	return err
}

func noMonths(context.Context, *pgxpool.Pool, time.Time, time.Time) error { return nil }

// dropByUserThenDelete can drop nothing by date: a user's partition holds
// every year. It deletes.
func dropByUserThenDelete(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	return deleteInBatches(ctx, db, cutoff)
}
