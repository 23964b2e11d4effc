package migrations

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/goosepg"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/migrations"
	scalable "works-vs-scales/scalable/migrations"
	"works-vs-scales/shop"
)

// Lesson 20's exercise, in exercises/migrations: three migrations that keep
// the shop answering while they run. Its check is here, with the proof that
// it fails on the starting point and on the wrong answers people write, and
// passes on the reference; the trainee's run of it, TestExercise20, is in
// exercise_test.go, behind the exercise tag.

const (
	// exercise20Requests arrive while each migration waits for the lock a
	// request holds.
	exercise20Requests = 8
	// exercise20Patience is how long each of them may take: far longer
	// than any lock_timeout a migration under traffic should have, and
	// than any pause of a loaded machine.
	exercise20Patience = 10 * time.Second
	// exercise20MaxLocked is the most orders a backfill may hold locked
	// at once, in one transaction.
	exercise20MaxLocked = 5_000
)

// checkExercise20 says what is still wrong with an answer to lesson 20's
// exercise, or nil when it is done. On a copy of the shop it migrates to each
// version in turn, each while a request holds a lock: the ALTER of version 1
// while a transaction that read orders is open (the queries that arrive
// after it must end, and it must apply once the reader ends); the backfill
// of version 2 while an order is locked (it must hold no more than
// exercise20MaxLocked orders locked meanwhile, and fill every total once the
// order is free); the index of version 3 while a write to orders is open (the
// writes that arrive after it must end, and the index must be valid once the
// writer ends).
func checkExercise20(t *testing.T, migrate migrateFunc) error {
	ctx := context.Background()
	db := benchkit.SharedPool(t, pgtest.ShopClone(t, shop.Small), 2*exercise20Requests+4)
	if err := checkAddColumn(t, ctx, db, migrate); err != nil {
		return err
	}
	if err := checkBackfill(t, ctx, db, migrate); err != nil {
		return err
	}
	if err := checkIndex(t, ctx, db, migrate); err != nil {
		return err
	}
	t.Logf("the ALTER let %d queries through while a reader was open, the backfill held under %d orders locked, %d writes went on while the index built",
		exercise20Requests, exercise20MaxLocked, exercise20Requests)
	return nil
}

// startMigration runs migrate to version to on a goroutine, and returns
// what it returns.
func startMigration(ctx context.Context, db *pgxpool.Pool, migrate migrateFunc, to int64) <-chan error {
	migrated := make(chan error, 1)
	go func() { migrated <- migrate(ctx, db, to) }()
	return migrated
}

// exercise20Reach bounds how long a migration may take to reach the lock the
// test holds (a backfill, the last order): it only bounds a hang, since how
// long the work before the lock takes is the machine's, and the wait ends
// as soon as the migration waits.
const exercise20Reach = 4 * benchkit.HangBound

// waitForLockWaiter waits until a session of db's database waits for a lock:
// the migration, at the lock the test holds. It returns an error if the
// migration ends first, or none waits within exercise20Reach.
func waitForLockWaiter(t *testing.T, db *pgxpool.Pool, migrated <-chan error, to int64, held string) error {
	t.Helper()
	_, err := benchkit.PollLockWaiters(t, db, exercise20Reach, func(waiting int) (bool, error) {
		if waiting > 0 {
			return true, nil
		}
		select {
		case err := <-migrated:
			if err != nil {
				return false, fmt.Errorf("your migration to version %d, while %s: %w%s", to, held, err, hintFor(err))
			}
			return false, fmt.Errorf("your migration to version %d ended while %s, without waiting for it: it cannot have done its work", to, held)
		default:
			return false, nil
		}
	})
	if errors.Is(err, benchkit.ErrLockWaitersTimedOut) {
		return fmt.Errorf("your migration to version %d did not wait for a lock within %v while %s", to, exercise20Reach, held)
	}
	return err
}

// hintFor says what a migration's error means, when it is one the lesson
// names.
func hintFor(err error) string {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "25001":
		return " (CREATE INDEX CONCURRENTLY cannot run inside a transaction, and goose runs each migration in one unless its file says -- +goose NO TRANSACTION)"
	case scalable.LockTimedOut(err):
		return " (your lock_timeout gave up, as it should, and then nothing tried again: retry the migration after a pause, lesson 20, \"The scales version\")"
	}
	return ""
}

// awaitRequests waits for n requests' results: each must succeed within
// exercise20Patience of the last, while the migration still waits.
func awaitRequests(done <-chan error, migrated <-chan error, n int, to int64, what, whats, blame string) error {
	for i := range n {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("%s %d of %d, while your migration to version %d waited: %w", what, i+1, n, to, err)
			}
		case err := <-migrated:
			if err != nil {
				return fmt.Errorf("your migration to version %d, while %d of %d %s had ended: %w%s", to, i, n, whats, err, hintFor(err))
			}
			return fmt.Errorf("your migration to version %d ended while the lock it needs was still held", to)
		case <-time.After(exercise20Patience):
			return fmt.Errorf("%d of %d %s that arrived after your migration to version %d began were still waiting %v later: %s",
				n-i, n, whats, to, exercise20Patience, blame)
		}
	}
	return nil
}

// awaitMigration waits for the migration once the test's lock is released.
func awaitMigration(migrated <-chan error, to int64) error {
	select {
	case err := <-migrated:
		if err != nil {
			return fmt.Errorf("your migration to version %d, once the lock it waited for was free: %w%s", to, err, hintFor(err))
		}
		return nil
	case <-time.After(benchkit.HangBound):
		return fmt.Errorf("your migration to version %d had not ended %v after the lock it waited for was free", to, benchkit.HangBound)
	}
}

func checkAddColumn(t *testing.T, ctx context.Context, db *pgxpool.Pool, migrate migrateFunc) error {
	const to, held = 1, "a transaction that read orders was open"
	release := benchkit.LockTable(t, db, "orders", "ACCESS SHARE")
	defer release()
	migrated := startMigration(ctx, db, migrate, to)
	if err := waitForLockWaiter(t, db, migrated, to, held); err != nil {
		return err
	}
	done := startQueries(ctx, db, exercise20Requests)
	if err := awaitRequests(done, migrated, exercise20Requests, to, "order-page query", "order-page queries", "they queue behind your ALTER TABLE, which queues behind "+
		"the open reader; give the ALTER a lock_timeout, so that it gives up waiting and lets them through (lesson 20, \"Why it breaks\")"); err != nil {
		return err
	}
	release()
	if err := awaitMigration(migrated, to); err != nil {
		return err
	}
	if !hasColumn(t, db, "orders", "total_cents") {
		return fmt.Errorf("after your migration to version %d, orders has no total_cents column", to)
	}
	return nil
}

func checkBackfill(t *testing.T, ctx context.Context, db *pgxpool.Pool, migrate migrateFunc) error {
	const to = 2
	var last int64
	if err := db.QueryRow(ctx, `SELECT max(id) FROM orders`).Scan(&last); err != nil {
		return fmt.Errorf("the last order: %w", err)
	}
	held := fmt.Sprintf("a request held order %d locked", last)
	release := lockOrder(t, db, last)
	defer release()
	migrated := startMigration(ctx, db, migrate, to)
	if err := waitForLockWaiter(t, db, migrated, to, held); err != nil {
		return err
	}
	_, locked := backfillProgress(t, db)
	if byBackfill := locked - 1; byBackfill > exercise20MaxLocked {
		return fmt.Errorf("while %s, your backfill held %d other orders locked, in one transaction: every request that updates one of them "+
			"waits for the whole backfill; update a batch of at most %d orders by key range in each transaction, and commit each (lesson 20, \"Backfills\")",
			held, byBackfill, exercise20MaxLocked)
	}
	release()
	if err := awaitMigration(migrated, to); err != nil {
		return err
	}
	const items = `SELECT coalesce(sum(quantity * price_cents), 0), coalesce(sum(quantity * price_cents * (order_id % 97)), 0) FROM order_items`
	var wantSum, wantWeighted int64
	if err := db.QueryRow(ctx, items).Scan(&wantSum, &wantWeighted); err != nil {
		return fmt.Errorf("the items' totals: %w", err)
	}
	sum, weighted, missing := totalsDigest(t, db)
	switch {
	case missing > 0:
		return fmt.Errorf("after your backfill, %d orders have no total", missing)
	case sum != wantSum || weighted != wantWeighted:
		return fmt.Errorf("after your backfill, the orders' totals add up to %d, and their items to %d: an order's total is the sum of its items' quantity × price_cents", sum, wantSum)
	}
	return nil
}

func checkIndex(t *testing.T, ctx context.Context, db *pgxpool.Pool, migrate migrateFunc) error {
	const to, held = 3, "a write to orders was not yet committed"
	release := benchkit.LockTable(t, db, "orders", "ROW EXCLUSIVE")
	defer release()
	migrated := startMigration(ctx, db, migrate, to)
	if err := waitForLockWaiter(t, db, migrated, to, held); err != nil {
		return err
	}
	done := startWrites(ctx, db, exercise20Requests)
	if err := awaitRequests(done, migrated, exercise20Requests, to, "order placed", "orders placed", "they queue behind your CREATE INDEX, which blocks every "+
		"write until it has built the index; build it CONCURRENTLY (lesson 20, \"Indexes\")"); err != nil {
		return err
	}
	release()
	if err := awaitMigration(migrated, to); err != nil {
		return err
	}
	const index = `SELECT coalesce(bool_and(i.indisvalid), false), count(*)
		FROM pg_index i
		WHERE i.indrelid = 'orders'::regclass AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total_cents')`
	var valid bool
	var n int
	if err := db.QueryRow(ctx, index).Scan(&valid, &n); err != nil {
		return fmt.Errorf("the index on orders.total_cents: %w", err)
	}
	if n == 0 || !valid {
		return fmt.Errorf("after your migration to version %d, orders has %d indexes on total_cents, and not all of them valid", to, n)
	}
	return nil
}

func TestExercise20CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise20(t, naive.Migrate)
	t.Log(err)
	require.ErrorContains(t, err, "give the ALTER a lock_timeout")
}

// TestExercise20CheckFailsOnALockTimeoutWithoutRetries: the ALTER gives up,
// as it should, and nothing tries it again.
func TestExercise20CheckFailsOnALockTimeoutWithoutRetries(t *testing.T) {
	err := checkExercise20(t, scalable.Migrator{Attempts: 1}.Migrate)
	t.Log(err)
	require.ErrorContains(t, err, "retry the migration after a pause")
}

// TestExercise20CheckFailsOnABackfillInOneStatement: the scalable
// migrations, with the naive backfill, one UPDATE.
func TestExercise20CheckFailsOnABackfillInOneStatement(t *testing.T) {
	err := checkExercise20(t, mixed(map[int64]migrateFunc{2: naive.Migrate}))
	t.Log(err)
	require.ErrorContains(t, err, "in one transaction")
}

// TestExercise20CheckFailsOnAPlainCreateIndex: the scalable migrations,
// with the naive CREATE INDEX.
func TestExercise20CheckFailsOnAPlainCreateIndex(t *testing.T) {
	err := checkExercise20(t, mixed(map[int64]migrateFunc{3: naive.Migrate}))
	t.Log(err)
	require.ErrorContains(t, err, "build it CONCURRENTLY")
}

// TestExercise20CheckFailsOnConcurrentlyInATransaction: the scalable
// migrations, with CREATE INDEX CONCURRENTLY in a migration goose runs in a
// transaction.
func TestExercise20CheckFailsOnConcurrentlyInATransaction(t *testing.T) {
	err := checkExercise20(t, mixed(map[int64]migrateFunc{3: gooseFixture("testdata/cic-in-a-transaction")}))
	t.Log(err)
	require.ErrorContains(t, err, "-- +goose NO TRANSACTION")
}

func TestExercise20CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise20(t, scalable.Migrate))
}

// mixed returns a wrong answer: the scalable migrations, but for the
// versions in wrong, each applied by the migrate given for it. Both sides
// use goose's one table of versions, so each applies what the other has not.
func mixed(wrong map[int64]migrateFunc) migrateFunc {
	return func(ctx context.Context, db *pgxpool.Pool, to int64) error {
		if m, ok := wrong[to]; ok {
			return m(ctx, db, to)
		}
		return scalable.Migrate(ctx, db, to)
	}
}

// gooseFixture returns a migrate that applies the SQL migrations in dir
// with goose, as the exercise's Migrate does.
func gooseFixture(dir string) migrateFunc {
	return func(ctx context.Context, db *pgxpool.Pool, to int64) error {
		return goosepg.UpTo(ctx, db, os.DirFS(filepath.Dir(dir)), filepath.Base(dir), to)
	}
}
