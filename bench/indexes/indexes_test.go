package indexes

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/indexes"
	scalable "works-vs-scales/scalable/indexes"
	"works-vs-scales/shop"
)

// Lesson 3: no index, then the right one.

var explainOut = flag.String("explain-out", "", "write lesson 3's EXPLAIN (ANALYZE, BUFFERS) plans to this file")

// pendingLimit is the warehouse's page of work.
const pendingLimit = 50

// shopWithIndexes returns a copy of the shop at scale s with lesson 3's index.
func shopWithIndexes(tb testing.TB, s shop.Scale) *pgxpool.Pool {
	tb.Helper()
	db := pgtest.ShopClone(tb, s)
	if err := scalable.AddIndexes(context.Background(), db); err != nil {
		tb.Fatal(err)
	}
	return db
}

func TestOldestPendingOrdersAgree(t *testing.T) {
	ctx := context.Background()
	want, err := naive.OldestPendingOrders(ctx, pgtest.Shop(t, shop.Small), pendingLimit)
	require.NoError(t, err)
	require.Len(t, want, pendingLimit)
	for i, o := range want {
		require.Equal(t, "pending", o.Status)
		if i > 0 {
			require.False(t, o.CreatedAt.Before(want[i-1].CreatedAt), "oldest first")
		}
	}
	got, err := scalable.OldestPendingOrders(ctx, shopWithIndexes(t, shop.Small), pendingLimit)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// TestPendingOrdersAnswerIsTheSameSizeAtEveryScale: along the ladder the
// benchmark climbs, the warehouse's answer is always 50 orders, so only the
// table grows.
func TestPendingOrdersAnswerIsTheSameSizeAtEveryScale(t *testing.T) {
	for _, scale := range shop.Ladder(shop.Small) {
		got, err := naive.OldestPendingOrders(context.Background(), pgtest.Shop(t, scale), pendingLimit)
		require.NoError(t, err)
		assert.Len(t, got, pendingLimit, "%v: %d orders", scale, scale.Orders())
	}
}

// TestPendingOrdersIndexChangesThePlan reads the plans of the statements each
// version sent: a sequential scan of every order without the index, an index
// scan of 50 entries with it.
func TestPendingOrdersIndexChangesThePlan(t *testing.T) {
	ctx := context.Background()
	without, with := pgtest.Shop(t, shop.Small), shopWithIndexes(t, shop.Small)

	recorded, naiveQueries := pgtest.RecordQueries(ctx)
	_, err := naive.OldestPendingOrders(recorded, without, pendingLimit)
	require.NoError(t, err)
	plan, err := pgtest.Explain(ctx, without, naiveQueries.Queries()[0])
	require.NoError(t, err)
	assert.Equal(t, []string{"Seq Scan"}, plan.Scans("orders"))
	assert.Equal(t, int64(shop.Small.Orders()), plan.RowsRead("orders"), "every order read")

	recorded, scalableQueries := pgtest.RecordQueries(ctx)
	_, err = scalable.OldestPendingOrders(recorded, with, pendingLimit)
	require.NoError(t, err)
	plan, err = pgtest.Explain(ctx, with, scalableQueries.Queries()[0])
	require.NoError(t, err)
	assert.Equal(t, []string{"Index Scan"}, plan.Scans("orders"))
	assert.Equal(t, int64(pendingLimit), plan.RowsRead("orders"), "only the answer read")

	if *explainOut != "" {
		writeExplains(t, *explainOut, map[string]explained{
			"without the index": {without, naiveQueries.Queries()[0]},
			"with the index":    {with, scalableQueries.Queries()[0]},
		})
	}
}

type explained struct {
	db    *pgxpool.Pool
	query pgtest.Query
}

// writeExplains writes the EXPLAIN (ANALYZE, BUFFERS) of each query to path,
// under a header saying where it ran.
func writeExplains(t *testing.T, path string, queries map[string]explained) {
	t.Helper()
	var out strings.Builder
	fmt.Fprintf(&out, "# go test -run TestPendingOrdersIndexChangesThePlan ./bench/indexes -args -explain-out=...\n")
	fmt.Fprintf(&out, "# %s, %d orders, %s\n", pgtest.ServerVersion(t), shop.Small.Orders(), time.Now().UTC().Format(time.DateOnly))
	for _, title := range []string{"without the index", "with the index"} {
		e := queries[title]
		rows, err := e.db.Query(context.Background(), "EXPLAIN (ANALYZE, BUFFERS) "+e.query.SQL, e.query.Args...)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		fmt.Fprintf(&out, "\n-- %s\n%s\n", title, strings.Join(lines, "\n"))
	}
	require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
}

// indexSize returns the size on disk of lesson 3's index.
func indexSize(tb testing.TB, db *pgxpool.Pool) int64 {
	var size int64
	err := db.QueryRow(context.Background(), "SELECT pg_relation_size('orders_status_created_at_idx')").Scan(&size)
	if err != nil {
		tb.Fatal(err)
	}
	return size
}

func BenchmarkOldestPendingOrders(b *testing.B) {
	ladder := benchkit.Scales()
	impls := []struct {
		name  string
		db    func(testing.TB, shop.Scale) *pgxpool.Pool
		query func(context.Context, *pgxpool.Pool, int) ([]shop.Order, error)
	}{
		{"naive", pgtest.Shop, naive.OldestPendingOrders},
		{"scalable", shopWithIndexes, scalable.OldestPendingOrders},
	}
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, scale := range ladder {
				db := impl.db(b, scale)
				b.Run(benchkit.Name("orders", scale.Orders()), func(b *testing.B) {
					ctx, counts := pgtest.CountQueries(context.Background())
					for b.Loop() {
						if _, err := impl.query(ctx, db, pendingLimit); err != nil {
							b.Fatal(err)
						}
					}
					benchkit.ReportCounts(b, counts)
					if impl.name == "scalable" {
						b.ReportMetric(float64(indexSize(b, db)), "index-bytes")
					}
				})
			}
		})
	}
}

// BenchmarkInsertOrders is the index's price: every insert updates it too.
// Each operation copies in a batch of 1,000 new orders.
func BenchmarkInsertOrders(b *testing.B) {
	impls := []struct {
		name string
		db   func(testing.TB, shop.Scale) *pgxpool.Pool
	}{
		{"naive", pgtest.ShopClone},
		{"scalable", shopWithIndexes},
	}
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			db := impl.db(b, shop.Small)
			ctx := context.Background()
			nextID := int64(shop.Small.Orders())
			const batch = 1000
			placedAt := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
			for b.Loop() {
				rows := make([][]any, batch)
				for i := range rows {
					nextID++
					rows[i] = []any{nextID, int64(1 + nextID%int64(shop.Small.Users())), "pending", placedAt.Add(time.Duration(nextID) * time.Second)}
				}
				_, err := db.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"id", "user_id", "status", "created_at"}, pgx.CopyFromRows(rows))
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/order")
		})
	}
}

// TestOldestPendingOrdersRefusesPageSizesItCannotServe: the warehouse's page
// is a page like any other: shop.ErrInvalidPage outside 1 to
// shop.MaxPageSize.
func TestOldestPendingOrdersRefusesPageSizesItCannotServe(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	for name, pending := range map[string]func(context.Context, *pgxpool.Pool, int) ([]shop.Order, error){
		"naive": naive.OldestPendingOrders, "scalable": scalable.OldestPendingOrders,
	} {
		for _, n := range []int{0, -1, shop.MaxPageSize + 1, math.MaxInt} {
			_, err := pending(context.Background(), db, n)
			assert.ErrorIs(t, err, shop.ErrInvalidPage, "%s, %d orders", name, n)
		}
	}
}
