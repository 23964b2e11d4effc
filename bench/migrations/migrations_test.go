package migrations

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/migrations"
	scalable "works-vs-scales/scalable/migrations"
	"works-vs-scales/shop"
)

// Lesson 20: each test migrates a copy of the shop of its own, while it holds
// locks of its own on that copy: a transaction that reads orders, an order
// row, an uncommitted insert. Each lock is released by a cleanup registered
// before it is taken, so a test that fails never leaves a session waiting.

// migrateFunc applies one side's migrations up to a version.
type migrateFunc func(ctx context.Context, db *pgxpool.Pool, to int64) error

// impl is one side of the lesson, with the versions of its migrations that
// the tests name.
type impl struct {
	name    string
	migrate migrateFunc
	// addTotal, backfillTotal and indexTotal are the versions of the
	// migrations that add orders.total_cents, fill it and index it.
	addTotal, backfillTotal, indexTotal int64
}

var impls = []impl{
	{"naive", naive.Migrate, naive.AddTotal, naive.BackfillTotal, naive.IndexTotal},
	{"scalable", scalable.Migrate, scalable.AddTotal, scalable.BackfillTotal, scalable.IndexTotal},
}

// ordersQuery is the query the traffic makes while a migration runs: a
// user's recent orders, as every order page does.
const ordersQuery = `SELECT id FROM orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10`

// hasColumn reports whether table has column in db.
func hasColumn(t *testing.T, db *pgxpool.Pool, table, column string) bool {
	t.Helper()
	const exists = `SELECT EXISTS (SELECT FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2)`
	var found bool
	require.NoError(t, db.QueryRow(context.Background(), exists, table, column).Scan(&found))
	return found
}

// totalsDigest sums what the orders' totals say, and counts the orders
// without one: the same for both sides once both have backfilled.
func totalsDigest(t *testing.T, db *pgxpool.Pool) (sum, sumWeighted, missing int64) {
	t.Helper()
	const digest = `SELECT coalesce(sum(total_cents), 0), coalesce(sum(total_cents * (id % 97)), 0),
		count(*) FILTER (WHERE total_cents IS NULL) FROM orders`
	require.NoError(t, db.QueryRow(context.Background(), digest).Scan(&sum, &sumWeighted, &missing))
	return sum, sumWeighted, missing
}

func TestMigrationsAgree(t *testing.T) {
	ctx := context.Background()
	const wantTotals = `SELECT coalesce(sum(quantity * price_cents), 0), coalesce(sum(quantity * price_cents * (order_id % 97)), 0) FROM order_items`
	var wantSum, wantWeighted int64
	require.NoError(t, pgtest.Shop(t, shop.Small).QueryRow(ctx, wantTotals).Scan(&wantSum, &wantWeighted))
	for _, impl := range impls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			require.NoError(t, impl.migrate(ctx, db, impl.indexTotal))
			sum, weighted, missing := totalsDigest(t, db)
			require.Zero(t, missing, "orders without a total")
			require.Equal(t, wantSum, sum, "the totals add up to the items")
			require.Equal(t, wantWeighted, weighted, "each order has its own items' total")
			var valid bool
			require.NoError(t, db.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_total_cents_idx'::regclass`).Scan(&valid))
			require.True(t, valid, "the index is valid")
			// Again: nothing left to apply.
			require.NoError(t, impl.migrate(ctx, db, impl.indexTotal))
		})
	}
}

// startQueries runs n order-page queries on db, each on a connection of its
// own, and returns a channel that receives each one's error as it ends.
func startQueries(ctx context.Context, db *pgxpool.Pool, n int) <-chan error {
	done := make(chan error, n)
	for i := range n {
		go func() {
			rows, err := db.Query(ctx, ordersQuery, int64(1+i))
			if err == nil {
				rows.Close()
				err = rows.Err()
			}
			done <- err
		}()
	}
	return done
}

// lockQueueQueries is how many order-page queries arrive while the migration
// waits for its lock.
const lockQueueQueries = 8

// TestLockQueueNaive: while a transaction that read orders stays open, the
// naive ALTER TABLE waits for it, and every query on orders that arrives
// after the ALTER waits behind it, though the lock it wants (ACCESS SHARE)
// does not conflict with the reader's: all lockQueueQueries of them, until
// the reader ends.
func TestLockQueueNaive(t *testing.T) {
	ctx := context.Background()
	db := benchkit.SharedPool(t, pgtest.ShopClone(t, shop.Small), 2*lockQueueQueries)
	release := benchkit.LockTable(t, db, "orders", "ACCESS SHARE") // a long report, say

	migrated := make(chan error, 1)
	go func() { migrated <- naive.Migrate(ctx, db, naive.AddTotal) }()
	benchkit.WaitForLockWaiters(t, db, 1) // the ALTER

	done := startQueries(ctx, db, lockQueueQueries)
	benchkit.WaitForLockWaiters(t, db, 1+lockQueueQueries)
	require.Equal(t, 1+lockQueueQueries, benchkit.LockWaiters(t, db), "the ALTER and every query behind it wait")
	require.Empty(t, done, "no query ends while the ALTER waits")

	release()
	for range lockQueueQueries {
		require.NoError(t, <-done)
	}
	require.NoError(t, <-migrated)
	require.True(t, hasColumn(t, db, "orders", "total_cents"))
}

// TestLockQueueScalable: the same reader, the same queries: the scalable
// ALTER gives up after its lock_timeout and lets the queries behind it
// through, so every one of them ends while the reader is still open; it then
// tries again, and applies once the reader ends.
func TestLockQueueScalable(t *testing.T) {
	ctx := context.Background()
	db := benchkit.SharedPool(t, pgtest.ShopClone(t, shop.Small), 2*lockQueueQueries)
	release := benchkit.LockTable(t, db, "orders", "ACCESS SHARE")

	migrated := make(chan error, 1)
	migrator := scalable.Migrator{Attempts: 1000, MaxBackoff: 200 * time.Millisecond} // longer than the test holds the reader
	go func() { migrated <- migrator.Migrate(ctx, db, scalable.AddTotal) }()
	benchkit.WaitForLockWaiters(t, db, 1) // the ALTER, at one of its attempts

	done := startQueries(ctx, db, lockQueueQueries)
	for range lockQueueQueries {
		select {
		case err := <-done:
			require.NoError(t, err)
		case err := <-migrated:
			t.Fatalf("the migration ended while the reader was still open: %v", err)
		}
	}
	require.False(t, hasColumn(t, db, "orders", "total_cents"), "the reader is still open: the ALTER cannot have applied")

	release()
	require.NoError(t, <-migrated)
	require.True(t, hasColumn(t, db, "orders", "total_cents"))
}

// TestScalableMigrationGivesUp: with the reader never ending, the scalable
// migration stops after its attempts, with the server's lock timeout in its
// error, and nothing applied.
func TestScalableMigrationGivesUp(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	benchkit.LockTable(t, db, "orders", "ACCESS SHARE")
	err := scalable.Migrator{Attempts: 3, Backoff: time.Millisecond}.Migrate(ctx, db, scalable.AddTotal)
	require.Error(t, err)
	require.True(t, scalable.LockTimedOut(err), "the error says the lock timed out: %v", err)
	require.ErrorContains(t, err, "attempt 3 of 3")
	require.False(t, hasColumn(t, db, "orders", "total_cents"))
}
