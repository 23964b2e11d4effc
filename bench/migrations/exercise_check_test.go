package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
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
	// at once, or write, in one transaction.
	exercise20MaxLocked = 5_000
)

// checkExercise20 says what is still wrong with an answer to lesson 20's
// exercise, or nil when it is done. On a copy of the shop it migrates to each
// version in turn, each while a request holds a lock: the ALTER of version 1
// while a transaction that read orders is open (the queries that arrive
// after it must end, and it must apply once the reader ends); the backfill
// of version 2 while the order in the middle is locked (it must hold no
// more than exercise20MaxLocked orders locked meanwhile, nor write more in
// any one transaction; the shop writes while it waits, to orders it has
// filled and to one it has not reached, and again once it has ended, and
// every order's total must be the sum of its items after each); the index
// of version 3 while a write to orders is open (the writes that arrive
// after it must end; then its build is cancelled, once its index is in the
// catalog, the writer ends, and version 3 runs again if the cancel ended
// it, while a transaction that read orders is open: the queries that
// arrive while it waits must end; the index must be valid, no index of
// orders INVALID, and the orders placed meanwhile must have their totals).
func checkExercise20(t *testing.T, migrate migrateFunc) error {
	ctx := context.Background()
	db := benchkit.CheckPool(t, pgtest.ShopClone(t, shop.Small), 2*exercise20Requests+4)
	// The transactions that loaded the shop (one COPY, as a rule): the
	// orders they wrote and no migration rewrote are no batch of a backfill.
	var seeded []string
	if err := db.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT xmin::text), '{}') FROM orders`).Scan(&seeded); err != nil {
		return fmt.Errorf("the shop's orders: %w", err)
	}
	if err := checkAddColumn(t, ctx, db, migrate); err != nil {
		return err
	}
	if err := checkBackfill(t, ctx, db, migrate, seeded); err != nil {
		return err
	}
	if err := checkIndex(t, ctx, db, migrate); err != nil {
		return err
	}
	t.Logf("the ALTER let %d queries through while a reader was open, the backfill held under %d orders locked and every total kept up "+
		"with the writes during and after it, %d writes went on while the index built, and queries went on while it ran again",
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

// cancelBuild cancels the concurrent build of migrate, once its index is in
// the catalog: when it waits for the open writer (wait_event virtualxid), as
// an operator, a statement_timeout or a deploy stopped half way would. It
// returns an error if the migration ends first, or no build waits so within
// exercise20Reach.
func cancelBuild(t *testing.T, ctx context.Context, db *pgxpool.Pool, migrated <-chan error, to int64) error {
	t.Helper()
	const cancel = `SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend' AND wait_event_type = 'Lock' AND wait_event = 'virtualxid'`
	deadline := time.Now().Add(exercise20Reach)
	for {
		var cancelled int
		if err := db.QueryRow(ctx, cancel).Scan(&cancelled); err != nil {
			return fmt.Errorf("cancel your build: %w", err)
		}
		if cancelled > 0 {
			return nil
		}
		select {
		case err := <-migrated:
			if err != nil {
				return fmt.Errorf("your migration to version %d, while a write to orders was open: %w%s", to, err, hintFor(err))
			}
			return fmt.Errorf("your migration to version %d ended while a write to orders was open: it cannot have built an index that is valid", to)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("your migration to version %d did not wait for the open writer within %v, as a concurrent build does once its index is in the catalog", to, exercise20Reach)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hintFor says what a migration's error means, when it is one the lesson
// names.
func hintFor(err error) string {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "25001":
		return " (CREATE INDEX CONCURRENTLY cannot run inside a transaction, and goose runs each migration in one unless its file says -- +goose NO TRANSACTION)"
	case errors.As(err, &pgErr) && pgErr.Code == "42P07":
		return " (an index of that name is there already: a build that was cancelled leaves its index behind, INVALID; drop it first when it is invalid, " +
			"and only then, lesson 20, \"The scales version\")"
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

// checkBackfill migrates to version 2; seeded are the ids of the
// transactions that loaded the shop's orders.
func checkBackfill(t *testing.T, ctx context.Context, db *pgxpool.Pool, migrate migrateFunc, seeded []string) error {
	const to = 2
	// An order in the middle: while the backfill waits for it, it has
	// filled the orders on one side and not yet reached those on the other.
	var middle int64
	if err := db.QueryRow(ctx, `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM orders`).Scan(&middle); err != nil {
		return fmt.Errorf("the order in the middle: %w", err)
	}
	held := fmt.Sprintf("a request held order %d locked", middle)
	release := lockOrder(t, db, middle)
	defer release()
	migrated := startMigration(ctx, db, migrate, to)
	if err := waitForLockWaiter(t, db, migrated, to, held); err != nil {
		return err
	}
	_, locked := backfillProgress(t, db)
	if byBackfill := locked - 1; byBackfill > exercise20MaxLocked {
		return fmt.Errorf("while %s, your backfill held %d other orders locked, in one transaction: every request that updates one of them "+
			"waits for the whole backfill; update a batch of at most %d orders by key range in each transaction, and commit each "+
			"(lesson 20, \"The scales version\", Backfills in batches)",
			held, byBackfill, exercise20MaxLocked)
	}
	// The backfill is under way, and waits for an order in the middle: the
	// shop goes on writing, behind it, ahead of it and beside it, as it
	// would in production.
	during, err := writeOrders(ctx, db, "while your backfill ran", true)
	if err != nil {
		return fmt.Errorf("while your backfill waited for order %d: %w", middle, err)
	}
	release()
	if err := awaitMigration(migrated, to); err != nil {
		return err
	}
	// The orders that share a transaction id (xmin) are those one
	// transaction wrote last: by the backfill, a request, or the load of
	// the shop, left out (an order the backfill had no need to rewrite).
	const largest = `SELECT coalesce(max(n), 0) FROM (
		SELECT count(*) AS n FROM orders WHERE NOT xmin::text = ANY($1) GROUP BY xmin::text) t`
	var batch int64
	if err := db.QueryRow(ctx, largest, seeded).Scan(&batch); err != nil {
		return fmt.Errorf("the largest batch of your backfill: %w", err)
	}
	if batch > exercise20MaxLocked {
		return fmt.Errorf("your backfill wrote %d orders in one transaction, and held them all locked until it committed: every request "+
			"that updates one of them waits for the whole batch; update a batch of at most %d orders by key range in each transaction, "+
			"and commit each (lesson 20, \"The scales version\", Backfills in batches)", batch, exercise20MaxLocked)
	}
	if err := checkTotals(ctx, db, during, duringBackfillHint); err != nil {
		return fmt.Errorf("after your backfill, %w", err)
	}
	// And after it: nothing but the database keeps the totals.
	after, err := writeOrders(ctx, db, "after your backfill ended", false)
	if err != nil {
		return fmt.Errorf("after your backfill: %w", err)
	}
	if err := checkTotals(ctx, db, after, afterBackfillHint); err != nil {
		return fmt.Errorf("after your backfill, %w", err)
	}
	return nil
}

// notReachedWrite is what writeOrders did to an order the backfill had not
// reached.
const notReachedWrite = "an item added to an order your backfill had not reached"

// The hints of checkTotals, for an order written while the backfill ran,
// for one it had not reached yet, and for one written after it.
const (
	duringBackfillHint = "the backfill sums the orders it reads, and an order written while it runs (placed, or an item of it added, " +
		"changed or removed) must be summed again by something else: create the triggers that keep an order's total (on a new order, " +
		"and on every insert, update and delete of its items) before the backfill begins, in the migration that adds the column " +
		"(lesson 20, \"The scales version\")"
	notReachedHint = "the backfill skips an order that has a total, and a trigger gave this one a total before the backfill reached it: " +
		"the change its item made, added to no total at all; a trigger must set an order's total again from all its items, " +
		"not add the change to the total it had (lesson 20, \"The scales version\")"
	afterBackfillHint = "nothing sums an order written since your backfill ended: the release writes no total of its own, " +
		"so the triggers that keep the totals (on a new order, and on every insert, update and delete of its items) must stay " +
		"once the backfill is done (lesson 20, \"The scales version\")"
)

// writeOrders writes to orders as a release does, each write in a
// transaction of its own, and returns what it did to each order it wrote,
// when (e.g. "while your backfill ran"): it places an order with an item,
// adds an item to the first order, changes the quantity of an item of the
// next order that has one, and removes an item of the order after that;
// and first, if notReached, adds an item to the last order that has no
// total and that no one holds locked (none if every order has a total): an
// order the backfill has not reached. Each write must end within
// exercise20Patience.
func writeOrders(ctx context.Context, db *pgxpool.Pool, when string, notReached bool) (map[int64]string, error) {
	const (
		place = `INSERT INTO orders (user_id, status, created_at) VALUES (1, 'pending', now()) RETURNING id`
		add   = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
			SELECT $1, coalesce(max(line_no), 0) + 1, 1, 2, 1234 FROM order_items WHERE order_id = $1
			RETURNING order_id`
		// The order no one holds locked: one locked by the backfill's open
		// batch would make this write wait for the test's own lock.
		addNotReached = `WITH o AS (SELECT id FROM orders WHERE total_cents IS NULL ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED)
			INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
			SELECT o.id, coalesce((SELECT max(line_no) FROM order_items WHERE order_id = o.id), 0) + 1, 1, 2, 1234 FROM o
			RETURNING order_id`
		first  = `SELECT min(id) FROM orders`
		change = `UPDATE order_items SET quantity = quantity + 1
			WHERE (order_id, line_no) = (SELECT order_id, line_no FROM order_items WHERE order_id > $1 ORDER BY order_id, line_no LIMIT 1)
			RETURNING order_id`
		remove = `DELETE FROM order_items
			WHERE (order_id, line_no) = (SELECT order_id, line_no FROM order_items WHERE order_id > $1 ORDER BY order_id, line_no LIMIT 1)
			RETURNING order_id`
	)
	written := make(map[int64]string)
	write := func(what, query string, arg ...any) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, exercise20Patience)
		defer cancel()
		var id int64
		if err := db.QueryRow(ctx, query, arg...).Scan(&id); err != nil {
			return 0, fmt.Errorf("%s (%s) did not end within %v: %w", what, when, exercise20Patience, err)
		}
		written[id] = what + " " + when
		return id, nil
	}
	if notReached {
		_, err := write(notReachedWrite, addNotReached)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
	}
	placed, err := write("placed", place)
	if err != nil {
		return nil, err
	}
	if _, err := write("placed, and an item added", add, placed); err != nil {
		return nil, err
	}
	var firstID int64
	if err := db.QueryRow(ctx, first).Scan(&firstID); err != nil {
		return nil, fmt.Errorf("the first order: %w", err)
	}
	if _, err := write("an item added", add, firstID); err != nil {
		return nil, err
	}
	changed, err := write("an item's quantity changed", change, firstID)
	if err != nil {
		return nil, err
	}
	if _, err := write("an item removed", remove, changed); err != nil {
		return nil, err
	}
	return written, nil
}

// checkTotals says which order's total is not the sum of its items, if any:
// one of written's orders first, named by what was done to it and followed
// by hint (notReachedHint for an order the backfill had not reached), else
// the order with the smallest id.
func checkTotals(ctx context.Context, db *pgxpool.Pool, written map[int64]string, hint string) error {
	// MATERIALIZED, so that the LIMIT does not talk the planner into a
	// nested loop over every order and every order's items.
	const wrong = `WITH wrong AS MATERIALIZED (
		SELECT o.id, o.total_cents, coalesce(s.total, 0)::bigint AS items
		  FROM orders o
		  LEFT JOIN (SELECT order_id, sum(quantity * price_cents) AS total FROM order_items GROUP BY order_id) s
		    ON s.order_id = o.id
		 WHERE o.total_cents IS DISTINCT FROM coalesce(s.total, 0))
		SELECT id, total_cents, items, (SELECT count(*) FROM wrong)
		  FROM wrong
		 ORDER BY id = ANY($1) DESC, id
		 LIMIT 1`
	ids := make([]int64, 0, len(written))
	for id := range written {
		ids = append(ids, id)
	}
	var (
		id, items, n int64
		total        *int64
	)
	err := db.QueryRow(ctx, wrong, ids).Scan(&id, &total, &items, &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the orders' totals: %w", err)
	}
	has := "no total"
	if total != nil {
		has = fmt.Sprintf("a total of %d", *total)
	}
	what, ok := written[id]
	if !ok {
		return fmt.Errorf("%d orders have no total or a wrong one: order %d has %s, and its items add up to %d "+
			"(an order's total is the sum of its items' quantity × price_cents)", n, id, has, items)
	}
	if strings.HasPrefix(what, notReachedWrite) {
		hint = notReachedHint
	}
	return fmt.Errorf("%d orders have no total or a wrong one: order %d (%s) has %s, and its items add up to %d: %s",
		n, id, what, has, items, hint)
}

func checkIndex(t *testing.T, ctx context.Context, db *pgxpool.Pool, migrate migrateFunc) error {
	const to, held = 3, "a write to orders was not yet committed"
	var before int64
	if err := db.QueryRow(ctx, `SELECT max(id) FROM orders`).Scan(&before); err != nil {
		return fmt.Errorf("the last order: %w", err)
	}
	release := benchkit.LockTable(t, db, "orders", "ROW EXCLUSIVE")
	defer release()
	migrated := startMigration(ctx, db, migrate, to)
	if err := waitForLockWaiter(t, db, migrated, to, held); err != nil {
		return err
	}
	done := startWrites(ctx, db, exercise20Requests)
	if err := awaitRequests(done, migrated, exercise20Requests, to, "order placed", "orders placed", "they queue behind your CREATE INDEX, which blocks every "+
		"write until it has built the index; build it CONCURRENTLY (lesson 20, \"The scales version\")"); err != nil {
		return err
	}
	// A deploy stopped half way: the build is cancelled once its index is
	// in the catalog, and the migration runs again, the writer gone.
	if err := cancelBuild(t, ctx, db, migrated, to); err != nil {
		return err
	}
	release()
	select {
	case err := <-migrated:
		if err != nil {
			t.Logf("your migration to version %d, its build cancelled: %v", to, err)
			if err := rerunIndex(t, ctx, db, migrate, to); err != nil {
				return err
			}
		}
	case <-time.After(benchkit.HangBound):
		return fmt.Errorf("your migration to version %d had not ended %v after its build was cancelled and the writer was gone", to, benchkit.HangBound)
	}
	const invalid = `SELECT coalesce(string_agg(c.relname, ', ' ORDER BY c.relname), '')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'orders'::regclass AND NOT i.indisvalid`
	var leftovers string
	if err := db.QueryRow(ctx, invalid).Scan(&leftovers); err != nil {
		return fmt.Errorf("the invalid indexes on orders: %w", err)
	}
	if leftovers != "" {
		return fmt.Errorf("after your migration to version %d ran again, once a build of it had been cancelled, orders has an INVALID index, %s: "+
			"the cancelled build left it, never used by a query and maintained by every write, and CREATE INDEX CONCURRENTLY IF NOT EXISTS "+
			"finds it and builds nothing; drop such a leftover first, and only an invalid one (lesson 20, \"The scales version\")", to, leftovers)
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
	rows, err := db.Query(ctx, `SELECT id FROM orders WHERE id > $1`, before)
	if err != nil {
		return fmt.Errorf("the orders placed while your index was built: %w", err)
	}
	placed, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("the orders placed while your index was built: %w", err)
	}
	written := make(map[int64]string, len(placed))
	for _, id := range placed {
		written[id] = "placed while your index was built"
	}
	if err := checkTotals(ctx, db, written, afterBackfillHint); err != nil {
		return fmt.Errorf("after your migration to version %d, %w", to, err)
	}
	return nil
}

// rerunIndex runs migrate to version to again, once a build of it was
// cancelled, while a transaction that read orders is open: what it runs
// first, to drop the index the build left, may wait for the reader, and
// the order-page queries that arrive meanwhile must end; then the reader
// ends, and so must the migration. A migration that takes no lock the
// reader holds up may end before it, without waiting.
func rerunIndex(t *testing.T, ctx context.Context, db *pgxpool.Pool, migrate migrateFunc, to int64) error {
	t.Helper()
	release := benchkit.LockTable(t, db, "orders", "ACCESS SHARE")
	defer release()
	migrated := startMigration(ctx, db, migrate, to)
	var (
		ended bool
		err   error
	)
	_, pollErr := benchkit.PollLockWaiters(t, db, benchkit.HangBound, func(waiting int) (bool, error) {
		select {
		case err = <-migrated:
			ended = true
			return true, nil
		default:
			return waiting > 0, nil
		}
	})
	if errors.Is(pollErr, benchkit.ErrLockWaitersTimedOut) {
		return fmt.Errorf("your migration to version %d, run again once its build had been cancelled, had neither ended nor waited for a lock %v later",
			to, benchkit.HangBound)
	}
	if pollErr != nil {
		return pollErr
	}
	if ended {
		t.Logf("your migration to version %d, run again, ended without waiting for the open reader", to)
	} else {
		t.Logf("your migration to version %d, run again, waits for a lock while a reader of orders is open", to)
		done := startQueries(ctx, db, exercise20Requests)
		if err := awaitRequests(done, migrated, exercise20Requests, to, "order-page query", "order-page queries", "they queue behind "+
			"your migration, run again, which waits for the open reader with a lock they wait for: a plain DROP INDEX of the leftover takes "+
			"an ACCESS EXCLUSIVE lock on orders; give it a lock_timeout, in a transaction of its own, and retry the migration when it gives up, "+
			"or drop the leftover with DROP INDEX CONCURRENTLY, a statement of its own (lesson 20, \"The scales version\")"); err != nil {
			return err
		}
		release()
		select {
		case err = <-migrated:
		case <-time.After(benchkit.HangBound):
			return fmt.Errorf("your migration to version %d, run again once its build had been cancelled, had not ended %v after the reader ended", to, benchkit.HangBound)
		}
	}
	if err != nil {
		return fmt.Errorf("your migration to version %d, run again once its build had been cancelled: %w%s", to, err, hintFor(err))
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

// TestExercise20CheckFailsOnABackfillWithoutATrigger: the backfill in
// batches, and nothing that sums an order written while they run, or after.
func TestExercise20CheckFailsOnABackfillWithoutATrigger(t *testing.T) {
	err := checkExercise20(t, backfillFixture(backfillInBatches))
	t.Log(err)
	require.ErrorContains(t, err, "an item added while your backfill ran")
	require.ErrorContains(t, err, "before the backfill begins")
}

// TestExercise20CheckFailsOnATriggerCreatedAfterTheBackfill: the triggers
// come once the batches are done, too late for what was written meanwhile.
func TestExercise20CheckFailsOnATriggerCreatedAfterTheBackfill(t *testing.T) {
	err := checkExercise20(t, backfillFixture(func(ctx context.Context, db *sql.DB) error {
		if err := backfillInBatches(ctx, db); err != nil {
			return err
		}
		return createTotalTriggers(ctx, db, "INSERT OR UPDATE OR DELETE")
	}))
	t.Log(err)
	require.ErrorContains(t, err, "an item added while your backfill ran")
	require.ErrorContains(t, err, "before the backfill begins")
}

// TestExercise20CheckFailsOnATriggerDroppedAfterTheBackfill: the triggers
// keep the totals while the batches run, and are dropped once they are
// done, as if only the backfill needed them.
func TestExercise20CheckFailsOnATriggerDroppedAfterTheBackfill(t *testing.T) {
	err := checkExercise20(t, backfillFixture(func(ctx context.Context, db *sql.DB) error {
		if err := createTotalTriggers(ctx, db, "INSERT OR UPDATE OR DELETE"); err != nil {
			return err
		}
		if err := backfillInBatches(ctx, db); err != nil {
			return err
		}
		_, err := db.ExecContext(ctx, `DROP TRIGGER order_items_sync_total ON order_items; DROP TRIGGER orders_new_total ON orders`)
		return err
	}))
	t.Log(err)
	require.ErrorContains(t, err, "an item added after your backfill ended")
	require.ErrorContains(t, err, "must stay")
}

// TestExercise20CheckFailsOnATriggerThatMissesUpdates: the triggers, before
// the batches, but the one on order_items fires on an insert only: an item
// whose quantity changes, or that is removed, leaves its order's total as
// it was.
func TestExercise20CheckFailsOnATriggerThatMissesUpdates(t *testing.T) {
	err := checkExercise20(t, backfillFixture(func(ctx context.Context, db *sql.DB) error {
		if err := createTotalTriggers(ctx, db, "INSERT"); err != nil {
			return err
		}
		return backfillInBatches(ctx, db)
	}))
	t.Log(err)
	require.ErrorContains(t, err, "an item's quantity changed while your backfill ran")
	require.ErrorContains(t, err, "every insert, update and delete of its items")
}

// TestExercise20CheckFailsOnConcurrentlyIfNotExists: CONCURRENTLY, outside
// a transaction, IF NOT EXISTS, and no drop of what a cancelled build left.
func TestExercise20CheckFailsOnConcurrentlyIfNotExists(t *testing.T) {
	err := checkExercise20(t, mixed(map[int64]migrateFunc{3: gooseFixture("testdata/cic-if-not-exists")}))
	t.Log(err)
	require.ErrorContains(t, err, "has an INVALID index, orders_total_cents_idx")
}

// TestExercise20CheckFailsOnConcurrentlyRunAgain: CONCURRENTLY, outside a
// transaction, which a cancelled build's leftover stops when it runs again.
func TestExercise20CheckFailsOnConcurrentlyRunAgain(t *testing.T) {
	err := checkExercise20(t, mixed(map[int64]migrateFunc{3: gooseFixture("testdata/cic")}))
	t.Log(err)
	require.ErrorContains(t, err, "drop it first when it is invalid")
}

// TestExercise20CheckFailsOnBatchesTooLarge: the reference's triggers, and
// its backfill in batches of 10,000 orders: each transaction holds twice as
// many orders locked as a request should wait for.
func TestExercise20CheckFailsOnBatchesTooLarge(t *testing.T) {
	err := checkExercise20(t, backfillFixture(func(ctx context.Context, db *sql.DB) error {
		if err := createTotalTriggers(ctx, db, "INSERT OR UPDATE OR DELETE"); err != nil {
			return err
		}
		return backfillInBatchesOf(10_000, false)(ctx, db)
	}))
	t.Log(err)
	require.ErrorContains(t, err, "in one transaction")
	require.ErrorContains(t, err, "a batch of at most 5000 orders")
}

// TestExercise20CheckFailsOnBatchesTooLargeThatBeginAtTheLockedOrder: the
// same, but a batch begins at the order the check locks, so that the
// backfill waits for it holding no other order locked: only the size of the
// batches it committed gives it away.
func TestExercise20CheckFailsOnBatchesTooLargeThatBeginAtTheLockedOrder(t *testing.T) {
	err := checkExercise20(t, backfillFixture(func(ctx context.Context, db *sql.DB) error {
		if err := createTotalTriggers(ctx, db, "INSERT OR UPDATE OR DELETE"); err != nil {
			return err
		}
		return backfillInBatchesOf(10_000, true)(ctx, db)
	}))
	t.Log(err)
	require.ErrorContains(t, err, "wrote 10000 orders in one transaction")
	require.ErrorContains(t, err, "a batch of at most 5000 orders")
}

// TestExercise20CheckFailsOnATriggerThatAddsDeltas: a trigger, before the
// batches, that adds each item's change to its order's total, whatever the
// total is; an order the backfill has not reached has none yet.
func TestExercise20CheckFailsOnATriggerThatAddsDeltas(t *testing.T) {
	err := checkExercise20(t, backfillFixture(func(ctx context.Context, db *sql.DB) error {
		if err := createDeltaTriggers(ctx, db); err != nil {
			return err
		}
		return backfillInBatches(ctx, db)
	}))
	t.Log(err)
	require.ErrorContains(t, err, "an item added to an order your backfill had not reached")
	require.ErrorContains(t, err, "again from all its items")
}

// TestExercise20CheckFailsOnADropWithoutALockTimeout: run again, the
// migration drops what the cancelled build left with a plain DROP INDEX and
// no lock_timeout, and the order pages queue behind it while a reader is
// open.
func TestExercise20CheckFailsOnADropWithoutALockTimeout(t *testing.T) {
	err := checkExercise20(t, mixed(map[int64]migrateFunc{3: gooseFixture("testdata/drop-then-cic")}))
	t.Log(err)
	require.ErrorContains(t, err, "a plain DROP INDEX of the leftover")
	require.ErrorContains(t, err, "give it a lock_timeout")
}

// TestExercise20CheckPassesOnADropConcurrently: run again, the migration
// drops what the cancelled build left with DROP INDEX CONCURRENTLY, which
// waits for a reader without queueing queries.
func TestExercise20CheckPassesOnADropConcurrently(t *testing.T) {
	require.NoError(t, checkExercise20(t, mixed(map[int64]migrateFunc{3: gooseFixture("testdata/drop-concurrently-then-cic")})))
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

// backfillFixture returns a wrong answer whose mistake is in its backfill:
// version 1 adds the column with a lock_timeout and no trigger
// (testdata/add-total), tried again until the lock is granted; version 2
// is backfill, a Go migration that goose runs outside a transaction;
// version 3 is the reference's index.
func backfillFixture(backfill func(context.Context, *sql.DB) error) migrateFunc {
	return mixed(map[int64]migrateFunc{
		1: retryLockTimeouts(gooseFixture("testdata/add-total")),
		2: func(ctx context.Context, db *pgxpool.Pool, to int64) error {
			return goosepg.UpTo(ctx, db, os.DirFS("testdata"), "add-total", to,
				goose.WithGoMigrations(goose.NewGoMigration(2, &goose.GoFunc{RunDB: backfill}, nil)))
		},
	})
}

// retryLockTimeouts returns migrate, tried again after a pause each time a
// lock_timeout gives up, up to a minute in all.
func retryLockTimeouts(migrate migrateFunc) migrateFunc {
	const pause, attempts = 50 * time.Millisecond, 1200
	return func(ctx context.Context, db *pgxpool.Pool, to int64) error {
		for attempt := 1; ; attempt++ {
			err := migrate(ctx, db, to)
			if !scalable.LockTimedOut(err) || attempt == attempts {
				return err
			}
			time.Sleep(pause)
		}
	}
}

// backfillInBatches fills every order's total, a batch of 1,000 orders by
// id a transaction, skipping those that have one, as the reference does,
// and nothing else.
func backfillInBatches(ctx context.Context, db *sql.DB) error {
	return backfillInBatchesOf(1000, false)(ctx, db)
}

// backfillInBatchesOf returns backfillInBatches with batches of size
// orders; if edgeAtMiddle, a batch begins at the order in the middle of
// their ids, the one checkBackfill locks.
func backfillInBatchesOf(size int64, edgeAtMiddle bool) func(context.Context, *sql.DB) error {
	return func(ctx context.Context, db *sql.DB) error {
		const batch = `
			UPDATE orders o
			   SET total_cents = (SELECT coalesce(sum(i.quantity * i.price_cents), 0)
			                        FROM order_items i
			                       WHERE i.order_id = o.id)
			 WHERE o.id >= $1 AND o.id < $2 AND o.total_cents IS NULL`
		var first, last int64
		if err := db.QueryRowContext(ctx, `SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM orders`).Scan(&first, &last); err != nil {
			return fmt.Errorf("backfill: bounds: %w", err)
		}
		if edgeAtMiddle {
			var middle int64
			if err := db.QueryRowContext(ctx, `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM orders`).Scan(&middle); err != nil {
				return fmt.Errorf("backfill: the middle: %w", err)
			}
			first = middle - (middle-first+size-1)/size*size
		}
		for from := first; from <= last; from += size {
			if _, err := db.ExecContext(ctx, batch, from, from+size); err != nil {
				return fmt.Errorf("backfill: ids %d to %d: %w", from, from+size-1, err)
			}
		}
		return nil
	}
}

// createDeltaTriggers creates a wrong answer's trigger on order_items: it
// adds what an item adds to its order's total (and takes away what it took
// away), to whatever total the order has, or to 0 if it has none. An item
// added to an order the backfill has not reached yet makes that order's
// total the item alone, and the backfill, which skips the orders that have
// a total, never sums it.
func createDeltaTriggers(ctx context.Context, db *sql.DB) error {
	const triggers = `
		CREATE FUNCTION order_items_add_delta() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		    IF TG_OP IN ('UPDATE', 'DELETE') THEN
		        UPDATE orders SET total_cents = coalesce(total_cents, 0) - OLD.quantity * OLD.price_cents WHERE id = OLD.order_id;
		    END IF;
		    IF TG_OP IN ('INSERT', 'UPDATE') THEN
		        UPDATE orders SET total_cents = coalesce(total_cents, 0) + NEW.quantity * NEW.price_cents WHERE id = NEW.order_id;
		    END IF;
		    RETURN NULL;
		END
		$$;
		CREATE FUNCTION orders_zero_total() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		    NEW.total_cents := coalesce(NEW.total_cents, 0);
		    RETURN NEW;
		END
		$$;
		CREATE TRIGGER orders_zero_total BEFORE INSERT ON orders
		    FOR EACH ROW EXECUTE FUNCTION orders_zero_total();
		CREATE TRIGGER order_items_add_delta AFTER INSERT OR UPDATE OR DELETE ON order_items
		    FOR EACH ROW EXECUTE FUNCTION order_items_add_delta();`
	if _, err := db.ExecContext(ctx, triggers); err != nil {
		return fmt.Errorf("the delta triggers: %w", err)
	}
	return nil
}

// createTotalTriggers creates the reference's triggers that keep the
// totals, read from its migration 1 (from its first CREATE FUNCTION to its
// Down), the one on order_items firing on events (e.g. "INSERT OR UPDATE OR
// DELETE", as the reference's does).
func createTotalTriggers(ctx context.Context, db *sql.DB, events string) error {
	const file, all = "../../scalable/migrations/sql/00001_orders_total_cents.sql", "AFTER INSERT OR UPDATE OR DELETE ON order_items"
	text, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("the triggers: %w", err)
	}
	_, up, found := strings.Cut(string(text), "CREATE FUNCTION orders_total_cents")
	up, _, foundDown := strings.Cut(up, "-- +goose Down")
	if !found || !foundDown || !strings.Contains(up, all) {
		return fmt.Errorf("the triggers: %s has no CREATE FUNCTION orders_total_cents, %q and -- +goose Down, in that order", file, all)
	}
	triggers := "CREATE FUNCTION orders_total_cents" + strings.Replace(up, all, "AFTER "+events+" ON order_items", 1)
	if _, err := db.ExecContext(ctx, triggers); err != nil {
		return fmt.Errorf("the triggers of %s: %w", file, err)
	}
	return nil
}
