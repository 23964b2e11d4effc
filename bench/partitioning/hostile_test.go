package partitioning

import (
	"context"
	"testing"
	"time"

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
