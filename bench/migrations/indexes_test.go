package migrations

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/migrations"
	scalable "works-vs-scales/scalable/migrations"
	"works-vs-scales/shop"
)

// placeOrderQuery is the write the traffic makes while an index builds.
const placeOrderQuery = `INSERT INTO orders (user_id, status, created_at) VALUES ($1, 'pending', now())`

// startWrites places n orders on db, each on a connection of its own, and
// returns a channel that receives each one's error as it ends.
func startWrites(ctx context.Context, db *pgxpool.Pool, n int) <-chan error {
	done := make(chan error, n)
	for i := range n {
		go func() {
			_, err := db.Exec(ctx, placeOrderQuery, int64(1+i))
			done <- err
		}()
	}
	return done
}

// indexValid returns whether orders_total_cents_idx exists, and whether it
// is valid.
func indexValid(t *testing.T, db *pgxpool.Pool) (exists, valid bool) {
	t.Helper()
	const state = `SELECT count(*) > 0, coalesce(bool_and(i.indisvalid), false)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'orders_total_cents_idx'`
	require.NoError(t, db.QueryRow(context.Background(), state).Scan(&exists, &valid))
	return exists, valid
}

// waitForBuildToWaitForWriters waits until the concurrent build of db waits
// for the transactions that were writing when its index entered the catalog
// (wait_event virtualxid): from then on, its index is in the catalog, not yet
// valid. Before that, it may wait for autovacuum, which the backfill woke.
func waitForBuildToWaitForWriters(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	const waiting = `SELECT count(*) FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend' AND wait_event_type = 'Lock' AND wait_event = 'virtualxid'`
	observer := pgtest.Shop(t, shop.Small)
	require.Eventually(t, func() bool {
		var n int
		err := observer.QueryRow(context.Background(), waiting, db.Config().ConnConfig.Database).Scan(&n)
		return err == nil && n == 1
	}, benchkit.HangBound, time.Millisecond, "the concurrent build waits for the open writer")
}

// indexWrites is how many orders are placed while the index waits to build.
const indexWrites = 8

// TestCreateIndexBlocksWrites: while a transaction that wrote to orders is
// open, the naive CREATE INDEX waits for it (it wants a SHARE lock, which no
// writer may hold), and every write after it waits behind it: all
// indexWrites of them, until the writer ends and the index is built.
func TestCreateIndexBlocksWrites(t *testing.T) {
	ctx := context.Background()
	db := benchkit.SharedPool(t, pgtest.ShopClone(t, shop.Small), 2*indexWrites)
	require.NoError(t, naive.Migrate(ctx, db, naive.BackfillTotal))
	release := benchkit.LockTable(t, db, "orders", "ROW EXCLUSIVE") // a write not yet committed

	migrated := make(chan error, 1)
	go func() { migrated <- naive.Migrate(ctx, db, naive.IndexTotal) }()
	benchkit.WaitForLockWaiters(t, db, 1)
	done := startWrites(ctx, db, indexWrites)
	benchkit.WaitForLockWaiters(t, db, 1+indexWrites)
	require.Equal(t, 1+indexWrites, benchkit.LockWaiters(t, db), "the CREATE INDEX and every write behind it wait; the sessions:\n%s", benchkit.Sessions(t, db))
	require.Empty(t, done, "no write ends while the CREATE INDEX waits")

	release()
	for range indexWrites {
		require.NoError(t, <-done)
	}
	require.NoError(t, <-migrated)
	exists, valid := indexValid(t, db)
	require.True(t, exists && valid)
}

// TestCreateIndexConcurrentlyLetsWritesThrough: the same open writer, the
// same writes: CREATE INDEX CONCURRENTLY waits for the writer too, and every
// write made meanwhile ends, while it still waits.
func TestCreateIndexConcurrentlyLetsWritesThrough(t *testing.T) {
	ctx := context.Background()
	db := benchkit.SharedPool(t, pgtest.ShopClone(t, shop.Small), 2*indexWrites)
	require.NoError(t, scalable.Migrate(ctx, db, scalable.BackfillTotal))
	release := benchkit.LockTable(t, db, "orders", "ROW EXCLUSIVE")

	migrated := make(chan error, 1)
	go func() { migrated <- scalable.Migrate(ctx, db, scalable.IndexTotal) }()
	waitForBuildToWaitForWriters(t, db)
	done := startWrites(ctx, db, indexWrites)
	for range indexWrites {
		select {
		case err := <-done:
			require.NoError(t, err)
		case err := <-migrated:
			t.Fatalf("the index was built while a writer it must wait for was still open: %v", err)
		}
	}
	require.Equal(t, 1, benchkit.LockWaiters(t, db), "the build still waits for the open writer, and only it")
	exists, valid := indexValid(t, db)
	require.True(t, exists, "a concurrent build commits its index to the catalog before it waits")
	require.False(t, valid, "and marks it valid only once built")

	release()
	require.NoError(t, <-migrated)
	exists, valid = indexValid(t, db)
	require.True(t, exists && valid)
}

// TestInterruptedConcurrentBuildLeavesAnInvalidIndex: a concurrent build
// cancelled while it waits leaves its index behind, INVALID. CREATE INDEX
// CONCURRENTLY IF NOT EXISTS then does nothing, and the index stays invalid;
// the scalable migration finds it, drops it and builds it again.
func TestInterruptedConcurrentBuildLeavesAnInvalidIndex(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, scalable.Migrate(ctx, db, scalable.BackfillTotal))
	release := benchkit.LockTable(t, db, "orders", "ROW EXCLUSIVE")

	migrated := make(chan error, 1)
	go func() { migrated <- scalable.Migrate(ctx, db, scalable.IndexTotal) }()
	waitForBuildToWaitForWriters(t, db)
	require.Equal(t, 1, benchkit.CancelLockWaiters(t, db)) // an operator, a statement_timeout, a deploy stopped
	err := <-migrated
	require.True(t, pgtest.IsQueryCanceled(err), "the server cancelled the build: %v", err)
	release()

	invalid, err := scalable.InvalidIndexes(ctx, db)
	require.NoError(t, err)
	require.Equal(t, []string{"orders_total_cents_idx"}, invalid, "the interrupted build's index is left, INVALID")

	_, err = db.Exec(ctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total_cents_idx ON orders (total_cents)`)
	require.NoError(t, err)
	_, valid := indexValid(t, db)
	require.False(t, valid, "IF NOT EXISTS finds the invalid index, and builds nothing")

	require.NoError(t, scalable.Migrate(ctx, db, scalable.IndexTotal))
	invalid, err = scalable.InvalidIndexes(ctx, db)
	require.NoError(t, err)
	require.Empty(t, invalid)
	exists, valid := indexValid(t, db)
	require.True(t, exists && valid, "the migration dropped the invalid index and built it again")
}

// indexOID returns the oid of orders_total_cents_idx: a new one each time
// the index is built.
func indexOID(t *testing.T, db *pgxpool.Pool) uint32 {
	t.Helper()
	var oid uint32
	require.NoError(t, db.QueryRow(context.Background(), `SELECT 'orders_total_cents_idx'::regclass::oid`).Scan(&oid))
	return oid
}

// leaveInvalidIndex leaves orders_total_cents_idx behind INVALID, as an
// interrupted build does: a unique index on a column with duplicates fails
// at its build, after its entry is in the catalog.
func leaveInvalidIndex(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	_, err := db.Exec(context.Background(), `CREATE UNIQUE INDEX CONCURRENTLY orders_total_cents_idx ON orders (status)`)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr) && pgErr.Code == "23505", "the unique build fails on duplicate statuses: %v", err)
	exists, valid := indexValid(t, db)
	require.True(t, exists && !valid, "the failed build leaves its index, INVALID")
}

// TestIndexBuiltAheadIsKept: a valid index of that name, which a DBA built
// before the deploy, is kept: the migration is recorded, and builds nothing.
func TestIndexBuiltAheadIsKept(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, scalable.Migrate(ctx, db, scalable.BackfillTotal))
	_, err := db.Exec(ctx, `CREATE INDEX CONCURRENTLY orders_total_cents_idx ON orders (total_cents)`)
	require.NoError(t, err)
	built := indexOID(t, db)

	require.NoError(t, scalable.Migrate(ctx, db, scalable.IndexTotal))
	exists, valid := indexValid(t, db)
	require.True(t, exists && valid)
	require.Equal(t, built, indexOID(t, db), "the index built ahead is the one kept")
}

// TestInvalidIndexIsRebuilt: an INVALID index of that name is dropped and
// built again, valid; while a reader holds orders, the drop gives up after
// its lock_timeout instead of queueing every query behind it, and leaves the
// index as it was.
func TestInvalidIndexIsRebuilt(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, scalable.Migrate(ctx, db, scalable.BackfillTotal))
	leaveInvalidIndex(t, db)
	leftover := indexOID(t, db)

	release := benchkit.LockTable(t, db, "orders", "ACCESS SHARE") // a report reading orders
	// The bound only ends a migration that waits for the reader instead.
	bounded, cancel := context.WithTimeout(ctx, benchkit.HangBound)
	defer cancel()
	err := scalable.Migrator{Attempts: 1}.Migrate(bounded, db, scalable.IndexTotal)
	require.True(t, scalable.LockTimedOut(err), "the DROP INDEX gave up waiting for the reader: %v", err)
	require.Equal(t, leftover, indexOID(t, db), "nothing dropped")
	release()

	require.NoError(t, scalable.Migrate(ctx, db, scalable.IndexTotal))
	exists, valid := indexValid(t, db)
	require.True(t, exists && valid)
	require.NotEqual(t, leftover, indexOID(t, db), "the invalid index was dropped and built again")
}
