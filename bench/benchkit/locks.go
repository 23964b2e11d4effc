package benchkit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// LockTable locks table in mode (e.g. ACCESS EXCLUSIVE), in a transaction of
// its own on db, until release: queries that need the table wait for it, so a
// test knows that every caller it starts arrives while the first query still
// runs. That makes "at once" exact rather than a race.
//
// The lock is released when the test ends if release was not called, by a
// cleanup registered before the lock is taken: a test that fails while it
// holds the lock never leaves the database's other sessions waiting.
func LockTable(tb testing.TB, db *pgxpool.Pool, table, mode string) (release func()) {
	tb.Helper()
	var (
		tx   pgx.Tx
		once sync.Once
	)
	release = func() {
		once.Do(func() {
			if tx != nil {
				assert.NoError(tb, tx.Rollback(context.Background()), "release the lock on %s", table)
			}
		})
	}
	tb.Cleanup(release)
	var err error
	tx, err = db.Begin(context.Background())
	require.NoError(tb, err)
	_, err = tx.Exec(context.Background(), "LOCK TABLE "+pgx.Identifier{table}.Sanitize()+" IN "+mode+" MODE")
	require.NoError(tb, err)
	return release
}

// WaitForLockWaiters waits until n queries of db's database wait for a lock.
// It asks on a pool of its own: db's may be full of callers waiting.
func WaitForLockWaiters(tb testing.TB, db *pgxpool.Pool, n int) {
	tb.Helper()
	const waitersQuery = `SELECT count(*) FROM pg_stat_activity
		WHERE datname = $1 AND wait_event_type = 'Lock'`
	observer := pgtest.Shop(tb, shop.Small)
	database := db.Config().ConnConfig.Database
	var waiting int
	var lastErr error
	// The condition runs on a goroutine of its own, where require would not
	// stop the test: it keeps the error to report instead.
	ok := assert.Eventually(tb, func() bool {
		lastErr = observer.QueryRow(context.Background(), waitersQuery, database).Scan(&waiting)
		return lastErr == nil && waiting >= n
	}, 30*time.Second, 5*time.Millisecond, "%d queries waiting for the lock", n)
	if !ok {
		tb.Fatalf("waiting for %d lock waiters on %s: saw %d, last error %v", n, database, waiting, lastErr)
	}
}

// CallTogether calls fn from n goroutines and returns their results once all
// have returned. started is closed when every goroutine is about to call.
func CallTogether[T any](n int, fn func() (T, error)) (results []T, errs []error, started <-chan struct{}, wait func()) {
	results, errs = make([]T, n), make([]error, n)
	var ready, done sync.WaitGroup
	ready.Add(n)
	done.Add(n)
	allReady := make(chan struct{})
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			results[i], errs[i] = fn()
		}()
	}
	go func() { ready.Wait(); close(allReady) }()
	return results, errs, allReady, done.Wait
}

// SharedPool returns a pool of size connections on db's database, closed when
// the test ends. Under a room's budget (WORKSHOP_MAX_CONNS) a size above what
// it leaves the test's own pools (OwnConns) skips the test, saying so: a
// benchmark that holds its pool's size fixed clamps it first (ClampToBudget).
func SharedPool(tb testing.TB, db *pgxpool.Pool, size int32) *pgxpool.Pool {
	tb.Helper()
	if own, ok := OwnConns(tb); ok && size > own {
		tb.Skipf("a pool of %d is above this trainee's budget: %s=%s leaves %d to a test's own pools", size, workshopenv.MaxConns, budgetSetting(), own)
	}
	cfg := db.Config()
	cfg.MaxConns = size
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open a pool of %d: %v", size, err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// CallWhileLocked calls fn from n goroutines while table is locked, so that
// every call arrives while the first query waits; then it releases the table
// and returns what the calls returned.
func CallWhileLocked[T any](t *testing.T, db *pgxpool.Pool, table string, n int, fn func() (T, error)) ([]T, []error) {
	t.Helper()
	release := LockTable(t, db, table, "ACCESS EXCLUSIVE")
	results, errs, started, wait := CallTogether(n, fn)
	<-started
	WaitForLockWaiters(t, db, 1)
	time.Sleep(StragglerGrace)
	release()
	wait()
	return results, errs
}

// StragglerGrace lets goroutines that signalled they are about to call reach
// the call: not a measurement, just room for the scheduler.
const StragglerGrace = 50 * time.Millisecond
