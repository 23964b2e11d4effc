package partitioning

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
	shophistory "works-vs-scales/shop/history"
)

// month is the first instant of a month, UTC.
func month(year int, m time.Month) time.Time { return time.Date(year, m, 1, 0, 0, 0, 0, time.UTC) }

// emptyHistory creates im's tables in a copy of the small shop, with the
// months [from, to) ready and no order yet.
func emptyHistory(t *testing.T, im impl, from, to time.Time) *pgxpool.Pool {
	t.Helper()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, im.createTables(context.Background(), db))
	require.NoError(t, im.prepareMonths(context.Background(), db, from, to))
	return db
}

// addOrder inserts an order placed at at, with one item.
func addOrder(t *testing.T, db *pgxpool.Pool, id int64, at time.Time) {
	t.Helper()
	ctx := context.Background()
	_, err := db.Exec(ctx, `INSERT INTO history.orders (id, user_id, total_cents, created_at) VALUES ($1, 7, 500, $2)`, id, at)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `INSERT INTO history.order_items (order_id, created_at, line_no, product_id, price_cents) VALUES ($1, $2, 1, 1, 500)`, id, at)
	require.NoError(t, err)
}

// TestBothSidesAgreeAtTheEdgesOfTime: months in the years 1 and 9999, which
// Go's and PostgreSQL's times both hold, are made, read and retired the same
// way on both sides. (January of the year 1 is Go's zero time: refused.)
func TestBothSidesAgreeAtTheEdgesOfTime(t *testing.T) {
	ctx := context.Background()
	for _, im := range impls() {
		t.Run(benchkit.Name("impl", im.name), func(t *testing.T) {
			db := emptyHistory(t, im, month(1, time.February), month(1, time.May))
			require.NoError(t, im.prepareMonths(ctx, db, month(9999, time.October), month(9999, time.December)))
			addOrder(t, db, 1, month(1, time.February).Add(time.Hour))
			addOrder(t, db, 2, month(1, time.April).Add(time.Hour))
			addOrder(t, db, 3, month(9999, time.November).Add(time.Hour))
			for _, c := range []struct {
				from time.Time
				want int
			}{{month(1, time.February), 1}, {month(1, time.March), 0}, {month(9999, time.November), 1}} {
				days, err := im.ordersPerDay(ctx, db, c.from, c.from.AddDate(0, 0, 7))
				require.NoError(t, err)
				require.Len(t, days, c.want, "the week from %v", c.from)
			}
			_, err := im.deleteBefore(ctx, db, month(1, time.January))
			require.ErrorIs(t, err, shophistory.ErrZeroTime, "the zero time, on both sides")
			removed, err := im.deleteBefore(ctx, db, month(1, time.March))
			require.NoError(t, err)
			require.Equal(t, int64(1), removed, "only the order of February of the year 1")
			var left int64
			require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM history.orders`).Scan(&left))
			require.Equal(t, int64(2), left)
		})
	}
}

// TestACancelledCallChangesNothing: every function given a cancelled
// context returns an error that says so, on both sides, and retention
// removes nothing.
func TestACancelledCallChangesNothing(t *testing.T) {
	h := history{first: month(2024, time.January), months: 3, orders: 90, users: 3}
	for _, im := range impls() {
		t.Run(benchkit.Name("impl", im.name), func(t *testing.T) {
			db := seedHistory(t, im, h)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := im.ordersPerDay(ctx, db, h.first, h.first.AddDate(0, 0, 7))
			require.ErrorIs(t, err, context.Canceled, "OrdersPerDay")
			_, err = im.page(ctx, db, 1, time.Time{}, 0, 10)
			require.ErrorIs(t, err, context.Canceled, "UserOrdersPage")
			_, err = im.deleteBefore(ctx, db, h.first.AddDate(0, 2, 0))
			require.ErrorIs(t, err, context.Canceled, "DeleteBefore")
			if im.name == "scalable" { // the naive side asks the database nothing
				require.ErrorIs(t, im.prepareMonths(ctx, db, h.end(), h.end().AddDate(0, 1, 0)), context.Canceled, "PrepareMonths")
			}
			var left int64
			require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM history.orders`).Scan(&left))
			require.Equal(t, int64(h.orders), left)
		})
	}
}

// wrapsTo returns a time in the year 586,000 or so that pgx would send as
// t: it writes a timestamptz as microseconds in an int64, and 2^64 of them
// later the count wraps round to t's.
func wrapsTo(t time.Time) time.Time {
	const wrapSeconds, wrapNanos = 18_446_744_073_709, 551_616_000 // 2^64 µs
	return time.Unix(t.Unix()+wrapSeconds, int64(t.Nanosecond())+wrapNanos).UTC()
}

// TestTimesPastTheYear9999AreRefusedNotWrapped: a time outside the years 1
// to 9999 is refused with ErrYearOutOfRange before the database is asked,
// on both sides. pgx writes a time as microseconds in an int64, which wraps
// round past the year 294,000 or so: a week in the year 586,000 was read as
// one in 2024, and a retention before a month in 580,000 BC, which removes
// nothing, removed every order placed before the year 2554.
func TestTimesPastTheYear9999AreRefusedNotWrapped(t *testing.T) {
	h := history{first: month(2024, time.January), months: 3, orders: 90, users: 3}
	ctx := context.Background()
	deepPast := month(-582_000, time.January) // written as a time in 2554
	require.Equal(t, 2554, time.UnixMicro(deepPast.Unix()*1_000_000).UTC().Year(), "the wrap the test relies on")
	for _, im := range impls() {
		t.Run(benchkit.Name("impl", im.name), func(t *testing.T) {
			db := seedHistory(t, im, h)
			from := wrapsTo(h.first)
			days, err := im.ordersPerDay(ctx, db, from, from.AddDate(0, 0, 7))
			require.ErrorIs(t, err, shophistory.ErrYearOutOfRange, "OrdersPerDay of a week in the year %d", from.Year())
			require.Empty(t, days)
			n, err := im.page(ctx, db, 1, deepPast, 1, 10)
			require.ErrorIs(t, err, shophistory.ErrYearOutOfRange, "UserOrdersPage before the year %d", deepPast.Year())
			require.Zero(t, n)
			removed, err := im.deleteBefore(ctx, db, deepPast)
			require.ErrorIs(t, err, shophistory.ErrYearOutOfRange, "DeleteBefore the year %d", deepPast.Year())
			require.Zero(t, removed)
			var left int64
			require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM history.orders`).Scan(&left))
			require.Equal(t, int64(h.orders), left, "orders left")
		})
	}
}

// TestRetentionQuotesThePartitionsItFinds: the scalable DeleteBefore
// writes its DETACH and DROP statements with the names it reads from the
// catalog, where anyone who may attach a partition chooses the name. A
// partition named as SQL ran that SQL (an owner of the history's tables
// dropped the shop's users with the retention job's rights); one named in
// capitals, or in another schema, was detached and dropped by another name.
// Each name is quoted as an identifier, in the partition's own schema.
func TestRetentionQuotesThePartitionsItFinds(t *testing.T) {
	h := history{first: month(2024, time.January), months: 3, orders: 90, users: 3}
	ctx := context.Background()
	var im impl
	for _, i := range impls() {
		if i.name == "scalable" {
			im = i
		}
	}
	db := seedHistory(t, im, h)
	const evil = `o; DROP TABLE public.users CASCADE; --`
	for _, sql := range []string{
		`CREATE SCHEMA archive`,
		// Detached first (the lower bound), it detached "o" and ran the rest.
		`CREATE TABLE history."` + evil + `" PARTITION OF history.order_items FOR VALUES FROM ('2023-10-01') TO ('2023-11-01')`,
		`CREATE TABLE history.o PARTITION OF history.order_items FOR VALUES FROM ('2023-11-01') TO ('2023-12-01')`,
		// A month in another schema, and one in capitals beside a table of
		// the same name in lower case that is no partition.
		`CREATE TABLE archive.orders_2023_10 PARTITION OF history.orders FOR VALUES FROM ('2023-10-01') TO ('2023-11-01')`,
		`CREATE TABLE history."Orders_2023_11" PARTITION OF history.orders FOR VALUES FROM ('2023-11-01') TO ('2023-12-01')`,
		`CREATE TABLE history.orders_2023_11 (kept text)`,
		`INSERT INTO history."Orders_2023_11" (id, user_id, total_cents, created_at) VALUES (-1, 1, 100, '2023-11-05'), (-2, 1, 100, '2023-11-06')`,
		`INSERT INTO archive.orders_2023_10 (id, user_id, total_cents, created_at) VALUES (-3, 1, 100, '2023-10-05')`,
	} {
		_, err := db.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	removed, err := im.deleteBefore(ctx, db, month(2023, time.December))
	require.NoError(t, err)
	require.Equal(t, int64(3), removed, "the orders of October and November 2023")
	var users *string
	require.NoError(t, db.QueryRow(ctx, `SELECT to_regclass('public.users')::text`).Scan(&users))
	require.NotNil(t, users, "the shop's users, dropped by a partition's name")
	rows, err := db.Query(ctx, `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname IN ('history', 'archive') AND c.relkind = 'r' AND c.relname !~ '_p[0-9]{4}_[0-9]{2}$' ORDER BY 1`)
	require.NoError(t, err)
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"history.orders_2023_11"}, left, "the old months dropped, and the table that was no partition kept")
}

// TestRetentionLeavesALaterMonthDetachedForMaintenance: the scalable
// DeleteBefore finishes a past retention by dropping the months it detached
// and did not drop, but only those before its cutoff. It dropped every
// detached month, and so the orders of a month after the cutoff that an
// operator had detached for a while (to load it, say) with them; and a
// table named as a month of the year 0 made every retention fail.
func TestRetentionLeavesALaterMonthDetachedForMaintenance(t *testing.T) {
	h := history{first: month(2024, time.January), months: 3, orders: 90, users: 3}
	ctx := context.Background()
	for _, im := range impls() {
		if im.name != "scalable" {
			continue
		}
		db := seedHistory(t, im, h)
		for _, sql := range []string{
			`ALTER TABLE history.orders DETACH PARTITION history.orders_p2024_03`,
			`CREATE TABLE history.orders_p0000_01 (kept text)`,
		} {
			_, err := db.Exec(ctx, sql)
			require.NoError(t, err, sql)
		}
		removed, err := im.deleteBefore(ctx, db, month(2024, time.February))
		require.NoError(t, err)
		require.Equal(t, h.ordersBefore(month(2024, time.February)), removed, "January's orders")
		var march int64
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM history.orders_p2024_03`).Scan(&march))
		require.Equal(t, h.orders-int(h.ordersBefore(month(2024, time.March))), int(march), "March, detached, kept")
	}
}

// TestTwoRetentionsAtOnceRemoveEachOrderOnce: two retentions held back by a
// third's advisory lock, then let go at once, take turns: together they
// remove each old order once, and neither fails on a month the other
// dropped. A third, cancelled while it waits, returns context.Canceled and
// leaves no session waiting or holding the lock.
func TestTwoRetentionsAtOnceRemoveEachOrderOnce(t *testing.T) {
	h := history{first: month(2024, time.January), months: 3, orders: 90, users: 3}
	ctx := context.Background()
	im := impls()[1]
	db := seedHistory(t, im, h)
	cutoff := month(2024, time.March)
	release := benchkit.HoldLock(t, db, "SELECT pg_advisory_xact_lock(190002)") // scalable's retentionLock
	removed, errs, _, wait := benchkit.CallTogether(2, func() (int64, error) { return im.deleteBefore(ctx, db, cutoff) })
	cancelled, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	third := make(chan error, 1)
	go func() { _, err := im.deleteBefore(cancelled, db, cutoff); third <- err }()
	benchkit.WaitForLockWaiters(t, db, 3)
	cancel()
	require.ErrorIs(t, <-third, context.Canceled)
	release()
	wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.Equal(t, h.ordersBefore(cutoff), removed[0]+removed[1], "each old order removed once: %v", removed)
	var left int
	require.Eventually(t, func() bool {
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 190002`).Scan(&left)
		return err == nil && left == 0
	}, 5*time.Second, 5*time.Millisecond, "sessions still holding or waiting for the retention's lock")
}
