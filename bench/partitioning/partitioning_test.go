package partitioning

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/partitioning"
	scalable "works-vs-scales/scalable/partitioning"
	"works-vs-scales/shop"
	shophistory "works-vs-scales/shop/history"
)

// impl is one side of the lesson behind one set of functions.
type impl struct {
	name          string
	createTables  func(context.Context, *pgxpool.Pool) error
	prepareMonths func(context.Context, *pgxpool.Pool, time.Time, time.Time) error
	ordersPerDay  func(context.Context, *pgxpool.Pool, time.Time, time.Time) ([]shophistory.DayCount, error)
	deleteBefore  func(context.Context, *pgxpool.Pool, time.Time) (int64, error)
	page          func(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) (int, error)
}

func impls() []impl {
	return []impl{
		{
			name: "naive", createTables: naive.CreateTables, prepareMonths: naive.PrepareMonths, deleteBefore: naive.DeleteBefore,
			ordersPerDay: naive.OrdersPerDay,
			page: func(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) (int, error) {
				orders, err := naive.UserOrdersPage(ctx, db, userID, beforeAt, beforeID, limit)
				return len(orders), err
			},
		},
		{
			name: "scalable", createTables: scalable.CreateTables, prepareMonths: scalable.PrepareMonths, deleteBefore: scalable.DeleteBefore,
			ordersPerDay: scalable.OrdersPerDay,
			page: func(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) (int, error) {
				orders, err := scalable.UserOrdersPage(ctx, db, userID, beforeAt, beforeID, limit)
				return len(orders), err
			},
		},
	}
}

// history is an order history: months of orders from first, evenly spread,
// two items each, for users 1 to users.
type history struct {
	first  time.Time
	months int
	orders int
	users  int
}

func (h history) end() time.Time { return h.first.AddDate(0, h.months, 0) }

func (h history) step() time.Duration { return h.end().Sub(h.first) / time.Duration(h.orders) }

// ordersBefore is how many of h's orders were placed before cutoff.
func (h history) ordersBefore(cutoff time.Time) int64 {
	return int64((cutoff.Sub(h.first) + h.step() - 1) / h.step())
}

// testHistory is two years of orders, small enough for every test.
var testHistory = history{first: time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC), months: 24, orders: 24 * 1000, users: 100}

// seedHistory creates impl's tables in a copy of the small shop, makes its
// months ready and fills them with h's orders, generated in the server.
// Autovacuum is off on the tables, so that the dead tuples a test counts are
// those the code left.
func seedHistory(tb testing.TB, im impl, h history) *pgxpool.Pool {
	tb.Helper()
	db := pgtest.ShopClone(tb, shop.Small)
	ctx := context.Background()
	require.NoError(tb, im.createTables(ctx, db))
	require.NoError(tb, im.prepareMonths(ctx, db, h.first, h.end()))
	fillHistory(tb, db, h)
	return db
}

// fillHistory fills h into a side's tables (fillOrders), vacuuming and
// analyzing both once their indexes are built, so that a test or benchmark
// starts from tables as a decade of autovacuum would have left them.
func fillHistory(tb testing.TB, db *pgxpool.Pool, h history) {
	tb.Helper()
	require.NoError(tb, fillOrders(context.Background(), db, h, "VACUUM (ANALYZE)"), "fill the history")
}

// lastWeek is the last seven days of h.
func (h history) lastWeek() (time.Time, time.Time) { return h.end().AddDate(0, 0, -7), h.end() }

func TestBothSidesAnswerTheSame(t *testing.T) {
	ctx := context.Background()
	cutoff := testHistory.first.AddDate(0, 6, 0)
	answers := map[string][][]shophistory.DayCount{}
	removed := map[string]int64{}
	for _, im := range impls() {
		db := seedHistory(t, im, testHistory)
		from, to := testHistory.lastWeek()
		week, err := im.ordersPerDay(ctx, db, from, to)
		require.NoError(t, err, im.name)
		require.Len(t, week, 7, im.name)
		// A week that spans the first day of the retention's cutoff month.
		edge, err := im.ordersPerDay(ctx, db, cutoff.AddDate(0, 0, -3), cutoff.AddDate(0, 0, 4))
		require.NoError(t, err, im.name)
		removed[im.name], err = im.deleteBefore(ctx, db, cutoff)
		require.NoError(t, err, im.name)
		after, err := im.ordersPerDay(ctx, db, cutoff.AddDate(0, 0, -3), cutoff.AddDate(0, 0, 4))
		require.NoError(t, err, im.name)
		require.Len(t, after, 4, "%s: the days before the cutoff are gone, those after it kept", im.name)
		assert.Equal(t, edge[3:], after, im.name)
		again, err := im.deleteBefore(ctx, db, cutoff)
		require.NoError(t, err, im.name)
		assert.Zero(t, again, "%s: a second retention to the same month removes nothing", im.name)
		answers[im.name] = [][]shophistory.DayCount{week, edge, after}
	}
	assert.Equal(t, answers["naive"], answers["scalable"])
	assert.Equal(t, removed["naive"], removed["scalable"])
	assert.Equal(t, testHistory.ordersBefore(cutoff), removed["naive"], "the first six months' orders")
}

// partitionsScanned runs q under EXPLAIN ANALYZE and returns the partitions
// of history.orders its plan reads.
func partitionsScanned(t *testing.T, db *pgxpool.Pool, q pgtest.Query) []string {
	t.Helper()
	plan, err := pgtest.Explain(context.Background(), db, q)
	require.NoError(t, err)
	seen := map[string]bool{}
	var parts []string
	plan.Walk(func(p pgtest.Plan) {
		if strings.HasPrefix(p.RelationName, "orders_p") && !seen[p.RelationName] {
			seen[p.RelationName] = true
			parts = append(parts, p.RelationName)
		}
	})
	return parts
}

func TestPartitionPruning(t *testing.T) {
	db := seedHistory(t, impls()[1], testHistory)
	from, to := testHistory.lastWeek()
	week := partitionsScanned(t, db, pgtest.Query{
		SQL:  "SELECT count(*) FROM history.orders WHERE created_at >= $1 AND created_at < $2",
		Args: []any{from, to},
	})
	assert.Equal(t, []string{"orders_p2025_12"}, week, "last week: one month read of %d", testHistory.months)

	byUser := partitionsScanned(t, db, pgtest.Query{
		SQL:  "SELECT id FROM history.orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10",
		Args: []any{int64(7)},
	})
	// A page of a user's orders names no month: every partition's index is
	// opened (the newest ones answer, as a Merge Append reads them).
	assert.Len(t, byUser, testHistory.months, "no partition key: every month is planned and opened")
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestUniqueKeyMustHoldThePartitionKey(t *testing.T) {
	db := seedHistory(t, impls()[1], history{first: testHistory.first, months: 2, orders: 10, users: 2})
	ctx := context.Background()
	_, err := db.Exec(ctx, "ALTER TABLE history.orders ADD CONSTRAINT orders_id_key UNIQUE (id)")
	require.Error(t, err)
	assert.Equal(t, "0A000", pgCode(err), "feature not supported: %v", err)
	assert.Contains(t, err.Error(), "must include all partitioning columns")

	// Lesson 9's key, (user_id, idempotency_key), on payments partitioned by
	// month, must take created_at in: a retry a second later is then a new row,
	// and the payment is taken twice.
	const payments = `
		CREATE TABLE history.payments (
			user_id bigint NOT NULL, idempotency_key text NOT NULL, created_at timestamptz NOT NULL,
			UNIQUE (user_id, idempotency_key, created_at)
		) PARTITION BY RANGE (created_at);
		CREATE TABLE history.payments_p2024_01 PARTITION OF history.payments FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')`
	_, err = db.Exec(ctx, payments)
	require.NoError(t, err)
	const pay = `INSERT INTO history.payments VALUES (42, 'order-7', $1) ON CONFLICT DO NOTHING`
	first := time.Date(2024, 1, 5, 12, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{first, first, first.Add(time.Second)} {
		_, err := db.Exec(ctx, pay, at)
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM history.payments WHERE idempotency_key = 'order-7'").Scan(&n))
	assert.Equal(t, 2, n, "the retry in the same microsecond is caught; the one a second later pays again")
}

func TestDefaultPartitionSwallowsAMonthNobodyMade(t *testing.T) {
	ctx := context.Background()
	h := history{first: testHistory.first, months: 2, orders: 10, users: 2}
	march := h.end()
	const insert = `INSERT INTO history.orders (id, user_id, total_cents, created_at) VALUES (1000, 1, 100, $1)`

	t.Run("without a default partition", func(t *testing.T) {
		db := seedHistory(t, impls()[1], h)
		_, err := db.Exec(ctx, insert, march.Add(time.Hour))
		assert.Equal(t, "23514", pgCode(err), "no partition for March: the order is refused: %v", err)
		from, to, err := scalable.MonthsAhead(march.Add(-time.Hour), 1)
		require.NoError(t, err)
		require.Equal(t, march, to.AddDate(0, -1, 0), "the month of now and the next")
		require.NoError(t, scalable.PrepareMonths(ctx, db, from, to))
		_, err = db.Exec(ctx, insert, march.Add(time.Hour))
		require.NoError(t, err, "made ahead of time, March takes its orders")
		var where string
		require.NoError(t, db.QueryRow(ctx, "SELECT tableoid::regclass::text FROM history.orders WHERE id = 1000").Scan(&where))
		assert.Equal(t, "history.orders_p2024_03", where)
	})

	t.Run("with a default partition", func(t *testing.T) {
		db := seedHistory(t, impls()[1], h)
		_, err := db.Exec(ctx, "CREATE TABLE history.orders_default PARTITION OF history.orders DEFAULT")
		require.NoError(t, err)
		_, err = db.Exec(ctx, insert, march.Add(time.Hour))
		require.NoError(t, err, "the default partition takes March's order")
		var swallowed int
		require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM history.orders_default").Scan(&swallowed))
		assert.Equal(t, 1, swallowed)
		err = scalable.PrepareMonths(ctx, db, march, march.AddDate(0, 1, 0))
		assert.Equal(t, "23514", pgCode(err), "March cannot be made now that the default holds one of its rows: %v", err)
		removed, err := scalable.DeleteBefore(ctx, db, h.first.AddDate(0, 1, 0))
		assert.Equal(t, "55000", pgCode(err), "object not in prerequisite state: %v", err)
		assert.ErrorContains(t, err, "cannot detach partitions concurrently when a default partition exists")
		assert.ErrorContains(t, err, "orders_p2024_01", "January, the month to go, is the one refused")
		assert.Zero(t, removed)
		var left int
		require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM history.orders").Scan(&left))
		assert.Equal(t, h.orders+1, left, "nothing removed")
	})
}

// deadTuples returns n_dead_tup of the tables (partitions or not) named
// history.<prefix>*, from pg_stat_user_tables, after the backend has flushed
// its counts.
func deadTuples(t testing.TB, db *pgxpool.Pool, prefix string) int64 {
	t.Helper()
	ctx := context.Background()
	var n int64
	require.NoError(t, db.QueryRow(ctx, `
		SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_user_tables
		WHERE schemaname = 'history' AND relname LIKE $1`, prefix+"%").Scan(&n))
	return n
}

func TestRetentionDeadTuples(t *testing.T) {
	ctx := context.Background()
	cutoff := testHistory.first.AddDate(0, 12, 0)
	for _, im := range impls() {
		t.Run(benchkit.Name("impl", im.name), func(t *testing.T) {
			db := seedHistory(t, im, testHistory)
			// One connection, so that its counts reach pg_stat_user_tables
			// before they are read.
			one, err := pgxpool.NewWithConfig(ctx, oneConnection(db))
			require.NoError(t, err)
			t.Cleanup(one.Close)
			removed, err := im.deleteBefore(ctx, one, cutoff)
			require.NoError(t, err)
			require.Equal(t, testHistory.ordersBefore(cutoff), removed)
			for _, sql := range []string{"SELECT pg_stat_force_next_flush()", "SELECT 1"} {
				_, err := one.Exec(ctx, sql)
				require.NoError(t, err)
			}
			orders, items := deadTuples(t, one, "orders"), deadTuples(t, one, "order_items")
			if im.name == "naive" {
				assert.Equal(t, removed, orders, "every deleted order is a dead tuple until VACUUM")
				assert.Equal(t, 2*removed, items, "and both its items")
			} else {
				assert.Zero(t, orders+items, "dropped months leave nothing dead")
			}
		})
	}
}

func oneConnection(db *pgxpool.Pool) *pgxpool.Config {
	cfg := db.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 1, 0
	return cfg
}

func TestHostileInputIsRefusedWithTypedErrors(t *testing.T) {
	ctx := context.Background()
	db := benchkit.NeverDialled(t)
	jan := time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)
	e := struct{ zero, empty, long, notMonth, limit, years error }{ // the same for both sides
		shophistory.ErrZeroTime, shophistory.ErrEmptyRange, shophistory.ErrRangeTooLong, shophistory.ErrNotMonthStart, shophistory.ErrBadLimit, shophistory.ErrYearOutOfRange,
	}
	for _, im := range impls() {
		for _, c := range []struct {
			what     string
			from, to time.Time
			want     error
		}{
			{"zero from", time.Time{}, jan, e.zero},
			{"zero to", jan, time.Time{}, e.zero},
			{"reversed", jan, jan.AddDate(0, 0, -1), e.empty},
			{"empty", jan, jan, e.empty},
			{"a century", jan, jan.AddDate(100, 0, 0), e.long},
			{"the whole of time", time.Unix(-1<<62, 0), time.Unix(1<<62, 0), e.years}, // its ends, before its length
		} {
			_, err := im.ordersPerDay(ctx, db, c.from, c.to)
			assert.ErrorIs(t, err, c.want, "%s OrdersPerDay %s", im.name, c.what)
		}
		for _, c := range []struct {
			what     string
			from, to time.Time
			want     error
		}{
			{"zero", time.Time{}, jan, e.zero},
			{"mid-month", jan.Add(time.Hour), jan.AddDate(0, 1, 0), e.notMonth},
			{"reversed", jan.AddDate(0, 1, 0), jan, e.empty},
			{"a thousand years", jan, jan.AddDate(1000, 0, 0), e.long},
		} {
			assert.ErrorIs(t, im.prepareMonths(ctx, db, c.from, c.to), c.want, "%s PrepareMonths %s", im.name, c.what)
		}
		for _, c := range []struct {
			cutoff time.Time
			want   error
		}{{time.Time{}, e.zero}, {jan.Add(time.Nanosecond), e.notMonth}, {jan.In(time.FixedZone("x", 3600)).Add(-time.Hour).Add(time.Minute), e.notMonth}} {
			_, err := im.deleteBefore(ctx, db, c.cutoff)
			assert.ErrorIs(t, err, c.want, "%s DeleteBefore %v", im.name, c.cutoff)
		}
		for _, limit := range []int{0, -1, 1 << 40} {
			_, err := im.page(ctx, db, 1, time.Time{}, 0, limit)
			assert.ErrorIs(t, err, e.limit, "%s UserOrdersPage limit %d", im.name, limit)
		}
	}
	_, _, err := scalable.MonthsAhead(time.Time{}, 1)
	assert.ErrorIs(t, err, shophistory.ErrZeroTime)
	_, _, err = scalable.MonthsAhead(jan, -1)
	assert.ErrorIs(t, err, shophistory.ErrRangeTooLong)
}

// TestBRINServesLastWeek: the lesson says a BRIN index on created_at, in
// place of the B-tree, serves recent ranges on one table. The plan of last
// week's orders per day, over the decade the benchmarks keep, reads it.
func TestBRINServesLastWeek(t *testing.T) {
	ctx := context.Background()
	h := decade(100_000)
	db := seedHistory(t, impls()[0], h)
	const useBRIN = `DROP INDEX history.orders_created_at_idx;
		CREATE INDEX orders_created_at_brin ON history.orders USING brin (created_at);
		ANALYZE history.orders`
	_, err := db.Exec(ctx, useBRIN)
	require.NoError(t, err)
	from, to := h.lastWeek()
	plan, err := pgtest.Explain(ctx, db, pgtest.Query{
		SQL: `SELECT date_trunc('day', created_at, 'UTC'), count(*), sum(total_cents)
			FROM history.orders WHERE created_at >= $1 AND created_at < $2 GROUP BY 1 ORDER BY 1`,
		Args: []any{from, to},
	})
	require.NoError(t, err)
	var scans []string
	plan.Walk(func(p pgtest.Plan) {
		if strings.Contains(p.NodeType, "Scan") {
			scans = append(scans, p.NodeType+" "+p.RelationName+p.IndexName)
		}
	})
	assert.Contains(t, scans, "Bitmap Index Scan orders_created_at_brin", "the plan's scans: %v", scans)
}

// TestRetentionWALIsTheCatalogs: the scalable retention's WAL, statement by
// statement from pg_stat_statements, comes from its DETACHes and DROPs (the
// catalog's changes, much of it full-page images of catalog pages); its count
// of each month, over a vacuumed month, writes none.
func TestRetentionWALIsTheCatalogs(t *testing.T) {
	ctx := context.Background()
	db := seedHistory(t, impls()[1], testHistory)
	_, err := db.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	require.NoError(t, err, "the server must load pg_stat_statements")
	_, err = scalable.DeleteBefore(ctx, db, testHistory.first.AddDate(1, 0, 0))
	require.NoError(t, err)
	// Only the retention runs such statements in this fresh database (its
	// names quoted).
	rows, err := db.Query(ctx, `
		SELECT CASE WHEN query LIKE 'SELECT count(*) FROM "history"."orders_p%' THEN 'count'
		            WHEN query LIKE 'ALTER TABLE "history".% DETACH PARTITION %' THEN 'detach'
		            WHEN query LIKE 'DROP TABLE IF EXISTS "history".%' THEN 'drop' END AS kind,
		       sum(calls)::bigint, sum(wal_bytes)::bigint
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = current_database()
		GROUP BY 1 HAVING CASE WHEN query LIKE 'SELECT count(*) FROM "history"."orders_p%' THEN 'count'
		            WHEN query LIKE 'ALTER TABLE "history".% DETACH PARTITION %' THEN 'detach'
		            WHEN query LIKE 'DROP TABLE IF EXISTS "history".%' THEN 'drop' END IS NOT NULL`)
	require.NoError(t, err)
	calls, wal := map[string]int64{}, map[string]int64{}
	for rows.Next() {
		var kind string
		var n, bytes int64
		require.NoError(t, rows.Scan(&kind, &n, &bytes))
		calls[kind], wal[kind] = n, bytes
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]int64{"count": 12, "detach": 24, "drop": 24}, calls, "twelve months, two tables each")
	assert.Zero(t, wal["count"], "the count writes no WAL")
	assert.Positive(t, wal["detach"]+wal["drop"], "the catalog's changes do")
}

// TestFillKeepsTheShapeAndTheOrderOfTime: the fill drops the keys, indexes
// and foreign keys and makes them again as they were (each side's, as its
// CreateTables and PrepareMonths made them, partitions' copies included);
// every item is its order's, and each table's pages follow time, as a live
// table's do and BRIN needs.
func TestFillKeepsTheShapeAndTheOrderOfTime(t *testing.T) {
	ctx := context.Background()
	const shapeQuery = `
		SELECT format('constraint %s %s %s validated=%s', c.relname, con.conname, pg_get_constraintdef(con.oid), con.convalidated)
		FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
		WHERE c.relnamespace = 'history'::regnamespace
		UNION ALL
		SELECT format('index %s %s', indexname, indexdef) FROM pg_indexes WHERE schemaname = 'history'
		ORDER BY 1`
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			require.NoError(t, im.createTables(ctx, db))
			require.NoError(t, im.prepareMonths(ctx, db, testHistory.first, testHistory.end()))
			describe := func() []string {
				rows, err := db.Query(ctx, shapeQuery)
				require.NoError(t, err)
				defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
				require.NoError(t, err)
				return defs
			}
			before := describe()
			require.NotEmpty(t, before)
			fillHistory(t, db, testHistory)
			require.Equal(t, before, describe(), "the shape after the fill")

			var orders, items, matched int64
			require.NoError(t, db.QueryRow(ctx, `SELECT (SELECT count(*) FROM history.orders), (SELECT count(*) FROM history.order_items),
				(SELECT count(*) FROM history.order_items i JOIN history.orders o
				 ON o.id = i.order_id AND o.created_at = i.created_at AND i.price_cents = o.total_cents / 2)`).Scan(&orders, &items, &matched))
			require.Equal(t, int64(testHistory.orders), orders)
			require.Equal(t, 2*orders, items)
			require.Equal(t, items, matched, "every item is its order's: its time, half its total")

			var outOfOrder int64
			for _, table := range []string{"orders", "order_items"} {
				// Within each table or partition, the rows in the order of
				// their pages go forward in time.
				require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM (
					SELECT created_at < lag(created_at) OVER (PARTITION BY tableoid ORDER BY ctid) AS back
					FROM history.`+table+`) r WHERE back`).Scan(&outOfOrder))
				require.Zero(t, outOfOrder, "%s: rows whose page is after a later row's", table)
			}
		})
	}
}
