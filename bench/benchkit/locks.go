package benchkit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
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
// runs. That makes "at once" exact rather than a race. See HoldLock.
func LockTable(tb testing.TB, db *pgxpool.Pool, table, mode string) (release func()) {
	tb.Helper()
	return HoldLock(tb, db, "LOCK TABLE "+pgx.Identifier{table}.Sanitize()+" IN "+mode+" MODE")
}

// HoldLock runs lock with args, a statement that takes a lock (LOCK TABLE,
// SELECT ... FOR UPDATE, pg_advisory_xact_lock), in a transaction of its own
// on db, and holds what it took until release, as an open request would.
//
// The lock is released when the test ends if release was not called, by a
// cleanup registered before the lock is taken: a test that fails while it
// holds the lock never leaves the database's other sessions waiting.
func HoldLock(tb testing.TB, db *pgxpool.Pool, lock string, args ...any) (release func()) {
	tb.Helper()
	var (
		tx   pgx.Tx
		once sync.Once
	)
	release = func() {
		once.Do(func() {
			if tx != nil {
				assert.NoError(tb, tx.Rollback(context.Background()), "release %s", lock)
			}
		})
	}
	tb.Cleanup(release)
	var err error
	tx, err = db.Begin(context.Background())
	require.NoError(tb, err)
	_, err = tx.Exec(context.Background(), lock, args...)
	require.NoError(tb, err, "%s %v", lock, args)
	return release
}

// LockWaiters returns how many sessions of db's database wait for a lock now
// (pg_stat_activity, wait_event_type Lock). It counts client sessions only:
// an autovacuum worker that queues behind a migration, and is then
// cancelled or let through, is not a caller. It asks on a pool of its own:
// db's may be full of callers waiting.
func LockWaiters(tb testing.TB, db *pgxpool.Pool) int {
	tb.Helper()
	n, err := lockWaiters(tb, db)
	require.NoError(tb, err)
	return n
}

func lockWaiters(tb testing.TB, db *pgxpool.Pool) (int, error) {
	const waitersQuery = `SELECT count(*) FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend' AND wait_event_type = 'Lock'`
	database := db.Config().ConnConfig.Database
	var n int
	if err := pgtest.Shop(tb, shop.Small).QueryRow(context.Background(), waitersQuery, database).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the sessions of %s waiting for a lock: %w", database, err)
	}
	return n, nil
}

// Sessions describes every session of db's database now, one a line (its
// kind, what it waits for, its state and the start of its query), for a
// failure message that says who was there when a count came out wrong.
func Sessions(tb testing.TB, db *pgxpool.Pool) string {
	tb.Helper()
	const sessions = `SELECT format('%s | %s %s | %s | %s', backend_type, coalesce(wait_event_type, '-'),
			coalesce(wait_event, '-'), coalesce(state, '-'), left(query, 80))
		FROM pg_stat_activity WHERE datname = $1 ORDER BY backend_start`
	rows, err := pgtest.Shop(tb, shop.Small).Query(context.Background(), sessions, db.Config().ConnConfig.Database)
	if err != nil {
		return fmt.Sprintf("(list the sessions: %v)", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Sprintf("(list the sessions: %v)", err)
	}
	return strings.Join(lines, "\n")
}

// CancelLockWaiters cancels the statements of db's database that wait for a
// lock now, as an operator does with pg_cancel_backend (their callers get
// SQLSTATE 57014), and returns how many it cancelled. It asks on a pool of
// its own. (A context cancelled in the client is not enough: pgx's default
// then closes the connection, and the server goes on waiting, and then
// running, the statement it was given.)
func CancelLockWaiters(tb testing.TB, db *pgxpool.Pool) int {
	tb.Helper()
	const cancel = `SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend' AND wait_event_type = 'Lock'`
	var n int
	require.NoError(tb, pgtest.Shop(tb, shop.Small).QueryRow(context.Background(), cancel, db.Config().ConnConfig.Database).Scan(&n),
		"cancel the lock waiters")
	return n
}

// ErrLockWaitersTimedOut is PollLockWaiters' error when its bound passed.
var ErrLockWaitersTimedOut = errors.New("benchkit: waited too long for lock waiters")

// PollLockWaiters asks every few milliseconds how many sessions of db's
// database wait for a lock (as LockWaiters), and gives the count to until,
// which says whether the wait is over, or why it cannot go on (the code
// under test ended first, say). It returns the last count, and until's
// error, or one that wraps ErrLockWaitersTimedOut once bound has passed.
// It fails no test itself, so that an exercise's check can say what went
// wrong in its own words.
func PollLockWaiters(tb testing.TB, db *pgxpool.Pool, bound time.Duration, until func(waiting int) (bool, error)) (int, error) {
	tb.Helper()
	deadline := time.Now().Add(bound)
	for {
		waiting, err := lockWaiters(tb, db)
		if err != nil {
			return 0, err
		}
		if done, err := until(waiting); done || err != nil {
			return waiting, err
		}
		if time.Now().After(deadline) {
			return waiting, fmt.Errorf("after %v, %d sessions wait for a lock: %w", bound, waiting, ErrLockWaitersTimedOut)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitForLockWaiters waits until n queries of db's database wait for a lock,
// and fails the test if that takes HangBound.
func WaitForLockWaiters(tb testing.TB, db *pgxpool.Pool, n int) {
	tb.Helper()
	waiting, err := PollLockWaiters(tb, db, HangBound, func(waiting int) (bool, error) { return waiting >= n, nil })
	if err != nil {
		tb.Fatalf("waiting for %d lock waiters on %s: saw %d: %v", n, db.Config().ConnConfig.Database, waiting, err)
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
	return newPool(tb, db, size)
}

// CheckPool returns a pool of size connections on db's database for an
// exercise's check, closed when the test ends, once CheckConns has let a
// pool of that size run.
func CheckPool(tb testing.TB, db *pgxpool.Pool, size int32) *pgxpool.Pool {
	tb.Helper()
	CheckConns(tb, size)
	return newPool(tb, db, size)
}

// CheckConns lets an exercise's check whose own pools need conns connections
// together run at that size; call it before opening them. Under a room's
// budget (WORKSHOP_MAX_CONNS) that leaves a test's own pools fewer
// (OwnConns), it first waits for the room's turn (pgtest.TakeLargeTurn),
// held until the test ends, after its pools are closed: one such check runs
// at a time on the server, so a room needs its trainees' budgets and the
// largest check's excess over one budget. A smaller pool would check another
// exercise, and a skipped check would say ok for an answer it never
// checked. lessons/TRAINER.md ("A connection budget") says which checks
// take the turn.
func CheckConns(tb testing.TB, conns int32) {
	tb.Helper()
	if own, ok := OwnConns(tb); ok && conns > own {
		pgtest.TakeLargeTurn(tb, fmt.Sprintf("%s needs a pool of %d connections, %d more than this trainee's budget, %s=%s, leaves a test's own pools",
			tb.Name(), conns, conns-own, workshopenv.MaxConns, budgetSetting()))
	}
}

// traineesCheck matches the name of the test a trainee's check runs
// (TestExercise12, behind the exercise tag), not the project's tests of the
// check (TestExercise12CheckFailsOnTheStart).
var traineesCheck = regexp.MustCompile(`^TestExercise\d+(/|$)`)

// CannotCheck stops an exercise's check that the room cannot run, saying why
// (format and args): lesson 18's under a budget without the room's replica.
// A trainee's check (TestExerciseNN) fails, saying it did not run: skipped,
// it would print ok for an answer it never checked. The project's tests of
// the check skip: they prove the check, and give no verdict.
func CannotCheck(tb testing.TB, format string, args ...any) {
	tb.Helper()
	why := fmt.Sprintf(format, args...)
	if traineesCheck.MatchString(tb.Name()) {
		tb.Fatalf("this check did not run, and says nothing of your answer: %s", why)
	}
	tb.Skipf("this check cannot run here: %s", why)
}

// newPool returns a pool of size connections on db's database, closed when
// the test ends.
func newPool(tb testing.TB, db *pgxpool.Pool, size int32) *pgxpool.Pool {
	tb.Helper()
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
