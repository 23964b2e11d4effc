package partitioning

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// benchOrders are the sizes of the decade of orders the benchmarks keep:
// 100,000 by default, 1M and 10M with WORKSHOP_LARGE=1 (10M takes minutes to
// seed on 2 cores), and 30M too with WORKSHOP_LARGE=2 (most of an hour). Each
// size is seeded once per server into a template (see historyClone).
func benchOrders() []int {
	switch benchkit.LargeLevel() {
	case 1:
		return []int{1_000_000, 10_000_000}
	case 2:
		return []int{1_000_000, 10_000_000, 30_000_000}
	}
	return []int{100_000}
}

// decade is ten years of n orders, 2016 to 2025, for 1,000 users.
func decade(n int) history {
	return history{first: time.Date(2016, time.January, 1, 0, 0, 0, 0, time.UTC), months: 120, orders: n, users: 1000}
}

// historyVersion names the history's templates: bump it when what
// historyClone seeds changes (fillHistory, or either side's CreateTables or
// PrepareMonths), so that no run reuses a template of the old history.
const historyVersion = 3

// historyClone returns a copy of the small shop holding im's tables filled
// with a decade of n orders, seeded once per server into a template and
// copied from it after (a decade of 10M orders takes minutes to seed, a
// fraction of that to copy).
func historyClone(b *testing.B, im impl, n int) *pgxpool.Pool {
	b.Helper()
	h := decade(n)
	return pgtest.DerivedClone(b, pgtest.Derived{
		Scale: shop.Small,
		Name:  fmt.Sprintf("l19v%d%s%s", historyVersion, im.name, orderCount(n)),
		Build: func(ctx context.Context, db *pgxpool.Pool) error {
			if err := im.createTables(ctx, db); err != nil {
				return err
			}
			if err := im.prepareMonths(ctx, db, h.first, h.end()); err != nil {
				return err
			}
			fillHistory(b, db, h)
			return nil
		},
	})
}

// orderCount is n orders, short, for a template's name: 100k, 1m, 30m.
func orderCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dm", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// reseed drops the history and seeds it again, off the clock.
func reseed(b testing.TB, db *pgxpool.Pool, im impl, h history) {
	b.Helper()
	ctx := context.Background()
	_, err := db.Exec(ctx, "DROP SCHEMA IF EXISTS history CASCADE")
	require.NoError(b, err)
	require.NoError(b, im.createTables(ctx, db))
	require.NoError(b, im.prepareMonths(ctx, db, h.first, h.end()))
	fillHistory(b, db, h)
}

// walOfDatabase is the WAL written so far by the statements run in db's
// database, from pg_stat_statements: the server's own WAL position would
// count every other database's writes too, and a shared server has many.
func walOfDatabase(tb testing.TB, db *pgxpool.Pool) int64 {
	tb.Helper()
	const walQuery = `
		SELECT coalesce(sum(wal_bytes), 0)::bigint FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`
	var n int64
	require.NoError(tb, db.QueryRow(context.Background(), walQuery).Scan(&n))
	return n
}

// historyBytes is the size on disk of every table and index in history.
func historyBytes(tb testing.TB, db *pgxpool.Pool) int64 {
	tb.Helper()
	var n int64
	require.NoError(tb, db.QueryRow(context.Background(), `
		SELECT coalesce(sum(pg_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'history'`).Scan(&n))
	return n
}

// BenchmarkRetention removes the oldest half of a decade of orders (five
// years, with their items) while a reader pages through a user's orders
// (lesson 2's keyset), and reports the WAL written, the bytes and dead
// tuples left, and the reader's slowest page while retention ran. The WAL is
// that of this database's statements (pg_stat_statements), the retention's and
// the reader's.
func BenchmarkRetention(b *testing.B) {
	ctx := context.Background()
	for _, n := range benchOrders() {
		h := decade(n)
		cutoff := h.first.AddDate(5, 0, 0)
		for _, im := range impls() {
			b.Run(benchkit.Name("impl", im.name)+"/"+benchkit.Name("orders", n), func(b *testing.B) {
				var wal, bytesAfter, dead int64
				var pages []time.Duration
				for b.Loop() {
					b.StopTimer()
					db := historyClone(b, im, n)
					_, err := db.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
					require.NoError(b, err, "the server must load pg_stat_statements (shared_preload_libraries; the trainer's to set, lessons/TRAINER.md)")
					// Retention on a connection of its own, whose counts it
					// flushes to pg_stat_user_tables before they are read.
					one, err := pgxpool.NewWithConfig(ctx, oneConnection(db))
					require.NoError(b, err)
					b.Cleanup(one.Close)
					before := walOfDatabase(b, db)
					stop := make(chan struct{})
					var wg sync.WaitGroup
					var mine []time.Duration
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							started := time.Now()
							if _, err := im.page(ctx, db, 7, time.Time{}, 0, 50); err != nil {
								b.Error(err)
								return
							}
							mine = append(mine, time.Since(started))
						}
					})
					b.StartTimer()
					removed, err := im.deleteBefore(ctx, one, cutoff)
					b.StopTimer()
					close(stop)
					wg.Wait()
					require.NoError(b, err)
					require.Equal(b, h.ordersBefore(cutoff), removed)
					wal += walOfDatabase(b, db) - before
					pages = append(pages, mine...)
					for _, sql := range []string{"SELECT pg_stat_force_next_flush()", "SELECT 1"} {
						_, err := one.Exec(ctx, sql)
						require.NoError(b, err)
					}
					bytesAfter = historyBytes(b, one)
					dead = deadTuples(b, one, "order")
					b.StartTimer()
				}
				b.ReportMetric(float64(wal)/float64(b.N), "wal-bytes/op")
				b.ReportMetric(float64(bytesAfter), "bytes-after")
				b.ReportMetric(float64(dead), "dead-tuples-after")
				if len(pages) > 0 {
					slices.Sort(pages)
					b.ReportMetric(float64(pages[len(pages)/2].Microseconds())/1000, "reader-p50-ms")
					b.ReportMetric(float64(pages[len(pages)-1].Microseconds())/1000, "reader-max-ms")
				}
			})
		}
	}
}

// BenchmarkRecentWeek asks for the last week's orders per day of a decade:
// one table and its B-tree on created_at (impl=btree), months pruned to one
// (impl=pruning), and one table with a BRIN index on created_at instead of
// the B-tree (impl=brin); index-bytes is the size of the index the query can
// use (none for pruning: the months are the index).
func BenchmarkRecentWeek(b *testing.B) {
	ctx := context.Background()
	for _, n := range benchOrders() {
		h := decade(n)
		from, to := h.lastWeek()
		for _, variant := range []struct {
			name  string
			im    impl
			index string
		}{
			{"btree", impls()[0], "orders_created_at_idx"},
			{"pruning", impls()[1], ""},
			{"brin", impls()[0], "orders_created_at_brin"},
		} {
			b.Run(benchkit.Name("impl", variant.name)+"/"+benchkit.Name("orders", n), func(b *testing.B) {
				db := historyClone(b, variant.im, n)
				if variant.name == "brin" {
					const useBRIN = `DROP INDEX history.orders_created_at_idx;
						CREATE INDEX orders_created_at_brin ON history.orders USING brin (created_at);
						ANALYZE history.orders`
					_, err := db.Exec(ctx, useBRIN)
					require.NoError(b, err)
				}
				var indexBytes int64
				if variant.index != "" {
					require.NoError(b, db.QueryRow(ctx, "SELECT pg_relation_size($1::regclass)", "history."+variant.index).Scan(&indexBytes))
				}
				for b.Loop() {
					days, err := variant.im.ordersPerDay(ctx, db, from, to)
					if err != nil || len(days) != 7 {
						b.Fatalf("%d days, %v", len(days), err)
					}
				}
				b.ReportMetric(float64(indexBytes), "index-bytes")
				b.ReportMetric(float64(historyBytes(b, db)), "history-bytes")
			})
		}
	}
}

// BenchmarkPlanning plans, without running, a page of a user's orders (no
// partition key: every month is planned) and last week's count (pruned to
// one month as it is planned), with 12, 120 and 1,200 monthly partitions.
func BenchmarkPlanning(b *testing.B) {
	ctx := context.Background()
	for _, months := range []int{12, 120, 1200} {
		b.Run(benchkit.Name("impl", "scalable")+"/"+benchkit.Name("partitions", months), func(b *testing.B) {
			db := pgtest.ShopClone(b, shop.Small)
			h := history{first: time.Date(1926, time.January, 1, 0, 0, 0, 0, time.UTC), months: months, orders: 10 * months, users: 100}
			reseed(b, db, impls()[1], h)
			from, to := h.lastWeek()
			plan := func(sql string, args ...any) float64 {
				var out []struct {
					Planning float64 `json:"Planning Time"`
				}
				var raw []byte
				require.NoError(b, db.QueryRow(ctx, "EXPLAIN (SUMMARY, FORMAT JSON) "+sql, args...).Scan(&raw))
				require.NoError(b, json.Unmarshal(raw, &out))
				return out[0].Planning
			}
			var byUser, week float64
			for b.Loop() {
				byUser += plan("SELECT id FROM history.orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 50", int64(7))
				week += plan("SELECT count(*) FROM history.orders WHERE created_at >= $1 AND created_at < $2", from, to)
			}
			b.ReportMetric(byUser/float64(b.N), "plan-by-user-ms")
			b.ReportMetric(week/float64(b.N), "plan-week-ms")
		})
	}
}
