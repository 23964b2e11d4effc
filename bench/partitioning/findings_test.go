// Tests of the findings of two reviews of lesson 19's code, each failing
// before its fix: months past the year 9999, a first page that missed later
// orders, two PrepareMonths at once, a PrepareMonths that queued readers
// behind it, and a retention interrupted halfway.

package partitioning

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	scalable "works-vs-scales/scalable/partitioning"
	"works-vs-scales/shop"
	shophistory "works-vs-scales/shop/history"
)

// TestMonthsPastTheYear9999AreRefused: MonthsAhead from December 9999 gives
// months of the year 10000, whose partition names sorted before 2024's; a
// retention that compared names as text dropped them. Both sides refuse
// such months now, with a typed error, and the scalable retention picks
// months by their bounds (TestRetentionChoosesMonthsByTheirBounds).
func TestMonthsPastTheYear9999AreRefused(t *testing.T) {
	ctx := context.Background()
	for _, im := range impls() {
		t.Run(benchkit.Name("impl", im.name), func(t *testing.T) {
			db := emptyHistory(t, im, month(2023, time.December), month(2024, time.February))
			from, to, err := scalable.MonthsAhead(month(9999, time.December).Add(time.Hour), 1)
			require.NoError(t, err)
			err = im.prepareMonths(ctx, db, from, to)
			require.ErrorIs(t, err, shophistory.ErrYearOutOfRange)
			require.NoError(t, im.prepareMonths(ctx, db, month(9999, time.December), month(10000, time.January)),
				"December 9999, which ends in the year 10000, is made")
		})
	}
}

// TestRetentionChoosesMonthsByTheirBounds: partitions named by hand, a month
// of the year 10000 attached by SQL past PrepareMonths's refusal, and a
// default partition: a retention to 2024 removes only what lies before 2024,
// as the naive side does.
func TestRetentionChoosesMonthsByTheirBounds(t *testing.T) {
	ctx := context.Background()
	db := emptyHistory(t, impls()[1], month(2023, time.December), month(2024, time.February))
	for _, sql := range []string{
		`CREATE TABLE history.orders_p10000_01 PARTITION OF history.orders FOR VALUES FROM ('10000-01-01 00:00:00+00') TO ('10000-02-01 00:00:00+00')`,
		`CREATE TABLE history.order_items_p10000_01 PARTITION OF history.order_items FOR VALUES FROM ('10000-01-01 00:00:00+00') TO ('10000-02-01 00:00:00+00')`,
		`CREATE TABLE history.orders_feb PARTITION OF history.orders FOR VALUES FROM ('2024-02-01 00:00:00+00') TO ('2024-03-01 00:00:00+00')`,
		`CREATE TABLE history.order_items_aaa PARTITION OF history.order_items FOR VALUES FROM ('2024-02-01 00:00:00+00') TO ('2024-03-01 00:00:00+00')`,
		`CREATE TABLE history.zzz_old PARTITION OF history.order_items FOR VALUES FROM (MINVALUE) TO ('2023-12-01 00:00:00+00')`,
		`CREATE TABLE history.order_items_default PARTITION OF history.order_items DEFAULT`,
	} {
		_, err := db.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	addOrder(t, db, 1, month(2023, time.December).Add(time.Hour))
	addOrder(t, db, 2, month(10000, time.January).Add(time.Hour))
	addOrder(t, db, 3, month(2024, time.February).Add(time.Hour))                               // in orders_feb and order_items_aaa
	_, err := db.Exec(ctx, `INSERT INTO history.order_items VALUES (9, '2000-01-01', 1, 1, 1)`) // in zzz_old
	require.NoError(t, err)
	_, err = db.Exec(ctx, `INSERT INTO history.order_items VALUES (3, '2024-06-01', 1, 1, 1)`) // in the default
	require.NoError(t, err)

	// The items' default partition forbids DETACH … CONCURRENTLY of any
	// items' month: the oldest, zzz_old, is refused first, and nothing goes.
	removed, err := scalable.DeleteBefore(ctx, db, month(2024, time.January))
	require.Error(t, err)
	require.Equal(t, "55000", pgCode(err), "object not in prerequisite state: %v", err)
	require.Contains(t, err.Error(), "cannot detach partitions concurrently when a default partition exists")
	require.Contains(t, err.Error(), "zzz_old")
	require.Zero(t, removed)
	_, err = db.Exec(ctx, `DROP TABLE history.order_items_default`)
	require.NoError(t, err)

	removed, err = scalable.DeleteBefore(ctx, db, month(2024, time.January))
	require.NoError(t, err)
	require.Equal(t, int64(1), removed, "the order of December 2023")
	var left []string
	require.NoError(t, db.QueryRow(ctx, `
		SELECT array_agg(c.relname::text ORDER BY c.relname COLLATE "C") FROM pg_class c
		WHERE c.relnamespace = 'history'::regnamespace AND c.relkind = 'r'`).Scan(&left))
	require.Equal(t, []string{"order_items_aaa", "order_items_p10000_01", "order_items_p2024_01", "orders_feb", "orders_p10000_01", "orders_p2024_01"}, left,
		"December 2023 and everything before it gone, by bounds; the year 10000 and February 2024 kept")
	var orders, items int64
	require.NoError(t, db.QueryRow(ctx, `SELECT (SELECT count(*) FROM history.orders), (SELECT count(*) FROM history.order_items)`).Scan(&orders, &items))
	require.Equal(t, []int64{2, 2}, []int64{orders, items}, "the orders of 10000 and February 2024 and their items")
}

// TestTheFirstPageHasTheNewestOrder: a zero beforeAt started the keyset at
// 9999-01-01, so an order placed later was on no page.
func TestTheFirstPageHasTheNewestOrder(t *testing.T) {
	ctx := context.Background()
	for _, im := range impls() {
		t.Run(benchkit.Name("impl", im.name), func(t *testing.T) {
			db := emptyHistory(t, im, month(9998, time.December), month(9999, time.March))
			addOrder(t, db, 1, month(9999, time.February).Add(time.Hour))
			addOrder(t, db, 2, month(9998, time.December).Add(time.Hour))
			n, err := im.page(ctx, db, 7, time.Time{}, 0, 10)
			require.NoError(t, err)
			require.Equal(t, 2, n, "the user's two orders, the one of 9999 included")
			n, err = im.page(ctx, db, 7, month(9999, time.February).Add(time.Hour), 1, 10)
			require.NoError(t, err)
			require.Equal(t, 1, n, "the next page: the order of 9998")
		})
	}
}

// TestTwoPrepareMonthsAtOnceBothSucceed: two servers run the daily
// PrepareMonths at once. With CREATE TABLE … IF NOT EXISTS both passed the
// check before either had the lock on the parent, and the second failed
// with 42P07. Forced here with a lock held on history.orders until both wait.
func TestTwoPrepareMonthsAtOnceBothSucceed(t *testing.T) {
	ctx := context.Background()
	db := emptyHistory(t, impls()[1], month(2024, time.January), month(2024, time.February))
	holder, err := db.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { holder.Rollback(context.Background()) })
	_, err = holder.Exec(ctx, "LOCK TABLE history.orders IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = scalable.PrepareMonths(ctx, db, month(2024, time.February), month(2024, time.April)) })
	}
	benchkit.WaitForLockWaiters(t, db, 2)
	require.NoError(t, holder.Rollback(ctx))
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	var months int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'history.orders'::regclass`).Scan(&months))
	require.Equal(t, 3, months, "January, February and March, once each")
}

// TestPrepareMonthsDoesNotQueueReaders: CREATE TABLE … PARTITION OF wants
// ACCESS EXCLUSIVE on the parent: behind a long reader it waited with no
// lock_timeout, and every reader after it queued behind it. ATTACH wants
// SHARE UPDATE EXCLUSIVE: a long reader does not hold it up; a VACUUM or
// another DDL does, and then it gives up with ErrLockTimeout, while readers
// that come meanwhile are served.
func TestPrepareMonthsDoesNotQueueReaders(t *testing.T) {
	ctx := context.Background()
	db := emptyHistory(t, impls()[1], month(2024, time.January), month(2024, time.February))
	addOrder(t, db, 1, month(2024, time.January).Add(time.Hour))

	t.Run("behind a long reader", func(t *testing.T) {
		reader, err := db.Begin(ctx)
		require.NoError(t, err)
		defer reader.Rollback(context.Background())
		var n int
		require.NoError(t, reader.QueryRow(ctx, "SELECT count(*) FROM history.orders").Scan(&n))
		bounded, cancel := context.WithTimeout(ctx, benchkit.HangBound)
		defer cancel()
		require.NoError(t, scalable.PrepareMonths(bounded, db, month(2024, time.February), month(2024, time.March)),
			"made while the reader's transaction is open")
		_, err = db.Exec(ctx, "INSERT INTO history.orders VALUES (2, 7, 1, '2024-02-02')")
		require.NoError(t, err, "February takes orders")
	})

	t.Run("behind a VACUUM's lock", func(t *testing.T) {
		holder, err := db.Begin(ctx)
		require.NoError(t, err)
		defer holder.Rollback(context.Background())
		_, err = holder.Exec(ctx, "LOCK TABLE history.orders IN SHARE UPDATE EXCLUSIVE MODE")
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- scalable.PrepareMonths(ctx, db, month(2024, time.March), month(2024, time.April)) }()
		benchkit.WaitForLockWaiters(t, db, 1)
		// A reader that comes while PrepareMonths waits is served at once:
		// with its own lock_timeout of 100 ms it would fail if it queued.
		err = pgxBeginReader(ctx, db)
		require.NoError(t, err, "a reader while PrepareMonths waits")
		require.Equal(t, 1, benchkit.LockWaiters(t, db), "only PrepareMonths waits")
		err = <-done
		require.ErrorIs(t, err, scalable.ErrLockTimeout)
		require.Equal(t, "55P03", pgCode(err), "lock not available: %v", err)
		var made bool
		require.NoError(t, db.QueryRow(ctx, "SELECT to_regclass('history.orders_p2024_03') IS NOT NULL").Scan(&made))
		require.False(t, made, "the month given up on leaves no table")
		require.NoError(t, holder.Rollback(ctx))
		require.NoError(t, scalable.PrepareMonths(ctx, db, month(2024, time.March), month(2024, time.April)), "the next day's run")
	})
}

// pgxBeginReader reads history.orders with a lock_timeout of 100 ms.
func pgxBeginReader(ctx context.Context, db *pgxpool.Pool) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '100ms'"); err != nil {
		return err
	}
	var n int
	return tx.QueryRow(ctx, "SELECT count(*) FROM history.orders").Scan(&n)
}

// TestAnInterruptedRetentionIsFinishedByTheNext: DETACH PARTITION …
// CONCURRENTLY waits, in its second transaction, for every transaction that
// could see the partition; cancelled there (a deploy, a statement_timeout,
// an operator), it leaves the partition "detach pending", and every later
// DETACH failed until someone ran … FINALIZE; cancelled at the items, after
// the orders' month was dropped, the next run failed on the missing table.
// The next retention now finishes the work and leaves nothing behind.
func TestAnInterruptedRetentionIsFinishedByTheNext(t *testing.T) {
	h := history{first: month(2024, time.January), months: 3, orders: 90, users: 3}
	cutoff := month(2024, time.February)
	for _, c := range []struct {
		held      string // the table a long reader holds: the detach that waits
		byContext bool   // cancelled by the caller's context, else by pg_cancel_backend
		first     int64  // what the cancelled run removed
	}{
		{"orders", true, 0},
		{"orders", false, 0},
		{"order_items", true, h.ordersBefore(cutoff)},
		{"order_items", false, h.ordersBefore(cutoff)},
	} {
		t.Run(fmt.Sprintf("held=%s/context=%v", c.held, c.byContext), func(t *testing.T) {
			ctx := context.Background()
			db := seedHistory(t, impls()[1], h)
			reader, err := db.Begin(ctx)
			require.NoError(t, err)
			t.Cleanup(func() { reader.Rollback(context.Background()) })
			var n int64
			require.NoError(t, reader.QueryRow(ctx, "SELECT count(*) FROM history."+c.held).Scan(&n))
			retention, cancel := context.WithCancel(ctx)
			defer cancel()
			type result struct {
				removed int64
				err     error
			}
			done := make(chan result, 1)
			go func() {
				removed, err := scalable.DeleteBefore(retention, db, cutoff)
				done <- result{removed, err}
			}()
			benchkit.WaitForLockWaiters(t, db, 1)
			if c.byContext {
				cancel()
			} else {
				admin := pgtest.Shop(t, shop.Small)
				_, err = admin.Exec(ctx, `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND wait_event_type = 'Lock'`,
					db.Config().ConnConfig.Database)
				require.NoError(t, err)
			}
			first := <-done
			require.Error(t, first.err, "the cancelled retention")
			require.Equal(t, c.first, first.removed)
			var pending int
			require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhdetachpending`).Scan(&pending))
			require.Equal(t, 1, pending, "the month whose detach was cancelled is detach pending")
			require.NoError(t, reader.Rollback(ctx))

			removed, err := scalable.DeleteBefore(ctx, db, cutoff)
			require.NoError(t, err, "the next retention")
			require.Equal(t, h.ordersBefore(cutoff), first.removed+removed, "January's orders, counted once")
			var left int
			require.NoError(t, db.QueryRow(ctx, `
				SELECT count(*) FROM pg_class
				WHERE relnamespace = 'history'::regnamespace AND relname LIKE '%p2024\_01'`).Scan(&left))
			require.Zero(t, left, "no table of January left, detached or not")
			require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhdetachpending`).Scan(&pending))
			require.Zero(t, pending)
			var orders int64
			require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM history.orders`).Scan(&orders))
			require.Equal(t, int64(h.orders)-h.ordersBefore(cutoff), orders)
		})
	}
}

// TestARetentionFinishesAMonthDetachedButNotDropped: a retention that died
// between a month's DETACH and its DROP left a table outside the history;
// the next one drops it, counts its orders, and removes its items.
func TestARetentionFinishesAMonthDetachedButNotDropped(t *testing.T) {
	ctx := context.Background()
	h := history{first: month(2024, time.January), months: 3, orders: 90, users: 3}
	cutoff := month(2024, time.February)
	db := seedHistory(t, impls()[1], h)
	_, err := db.Exec(ctx, "ALTER TABLE history.orders DETACH PARTITION history.orders_p2024_01")
	require.NoError(t, err)
	removed, err := scalable.DeleteBefore(ctx, db, cutoff)
	require.NoError(t, err)
	require.Equal(t, h.ordersBefore(cutoff), removed)
	var left int
	require.NoError(t, db.QueryRow(ctx, `
		SELECT count(*) FROM pg_class
		WHERE relnamespace = 'history'::regnamespace AND relname LIKE '%p2024\_01'`).Scan(&left))
	require.Zero(t, left)
}

// TestARetentionCountsALateOrderOfItsMonth: an order written to a month while
// the retention detaches it (a late event, an import) is dropped with the
// month, and counted with it. The count once came before the DETACH, which
// waits for that writer: the order was dropped and never counted.
func TestARetentionCountsALateOrderOfItsMonth(t *testing.T) {
	ctx := context.Background()
	h := history{first: month(2024, time.January), months: 3, orders: 90, users: 3}
	cutoff := month(2024, time.February)
	db := seedHistory(t, impls()[1], h)
	writer, err := db.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { writer.Rollback(context.Background()) })
	_, err = writer.Exec(ctx, `INSERT INTO history.orders (id, user_id, total_cents, created_at) VALUES (1000000, 1, 100, '2024-01-31 23:59:59+00')`)
	require.NoError(t, err)
	type result struct {
		removed int64
		err     error
	}
	done := make(chan result, 1)
	go func() {
		removed, err := scalable.DeleteBefore(ctx, db, cutoff)
		done <- result{removed, err}
	}()
	benchkit.WaitForLockWaiters(t, db, 1) // the DETACH, waiting for the writer
	require.NoError(t, writer.Commit(ctx))
	got := <-done
	require.NoError(t, got.err)
	require.Equal(t, h.ordersBefore(cutoff)+1, got.removed, "January's orders and the late one")
}
