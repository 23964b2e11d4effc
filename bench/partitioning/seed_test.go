package partitioning

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// seedTables are the tables shop.Load fills.
var seedTables = []string{"users", "products", "orders", "order_items", "posts", "comments"}

// BenchmarkSeed seeds the shop at benchkit.Scale (the large one with
// WORKSHOP_LARGE=1) as the harness does, its tables copied concurrently and
// frozen (impl=concurrent), and one table after another on one connection
// (impl=serial), each into a schema of its own in a copy of the small shop;
// and beside them pgbench -i (impl=pgbench), its whole initialisation
// (tables, rows, vacuum, primary keys) at about as many rows. rows/s is the
// size rule of lesson 19: the shop's seed must be no slower than pgbench -i.
func BenchmarkSeed(b *testing.B) {
	s := benchkit.Scale()
	for _, impl := range []string{"concurrent", "serial"} {
		b.Run(benchkit.Name("impl", impl)+"/"+benchkit.Name("orders", s.Orders()), func(b *testing.B) {
			db := pgtest.ShopClone(b, shop.Small)
			ctx := context.Background()
			i := 0
			var schema string
			for b.Loop() {
				i++
				schema = fmt.Sprintf("seed_%d", i)
				if _, err := db.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
					b.Fatal(err)
				}
				cfg := db.Config().ConnConfig.Copy()
				cfg.Tracer = nil
				cfg.RuntimeParams["search_path"] = schema
				connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) }
				conn, err := connect(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if impl == "serial" {
					connect = nil
				}
				err = shop.LoadConcurrently(ctx, conn, connect, s, pgtest.Seed)
				conn.Close(ctx)
				if err != nil {
					b.Fatal(err)
				}
			}
			rows := shopRows(b, db, schema)
			b.ReportMetric(float64(rows*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
		})
	}
	b.Run(benchkit.Name("impl", "pgbench")+"/"+benchkit.Name("orders", s.Orders()), func(b *testing.B) {
		// pgbench's scale that loads about as many rows as the shop, counted
		// in the harness's copy, so that each impl can run in a process of
		// its own.
		scale := max(1, int(shopRows(b, pgtest.Shop(b, s), "public")+50_000)/100_000)
		pgbench, err := benchkit.FindPgbench()
		if err != nil {
			b.Fatal(err)
		}
		db := pgtest.ShopClone(b, shop.Small)
		for b.Loop() {
			benchkit.RunPgbench(b, pgbench, db, "-i", "-q", "-s", strconv.Itoa(scale))
		}
		b.ReportMetric(float64(100_000*scale*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// shopRows counts the rows of the shop's tables in schema.
func shopRows(b *testing.B, db *pgxpool.Pool, schema string) int64 {
	b.Helper()
	rows := int64(0)
	for _, t := range seedTables {
		var n int64
		if err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+schema+"."+t).Scan(&n); err != nil {
			b.Fatal(err)
		}
		rows += n
	}
	return rows
}

// TestConcurrentSeedBuildsWhatTheSerialOneBuilds seeds a shop one table
// after another with indexes.sql as written, and one with the harness's
// concurrent load (keys built as each table is in, foreign keys added NOT
// VALID and validated after), each into a schema of its own, and compares
// what they hold: every row, every constraint (validated or not), every
// index, the identity's position and how many pages are all-visible.
func TestConcurrentSeedBuildsWhatTheSerialOneBuilds(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	s := shop.Scale{TopOrders: 1000}
	describe := map[string][]string{}
	for _, schema := range []string{"serial", "concurrent"} {
		_, err := db.Exec(ctx, "CREATE SCHEMA "+schema)
		require.NoError(t, err)
		cfg := db.Config().ConnConfig.Copy()
		cfg.Tracer = nil
		cfg.RuntimeParams["search_path"] = schema
		connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) }
		conn, err := connect(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close(ctx) })
		if schema == "serial" {
			require.NoError(t, shop.Load(ctx, conn, s, pgtest.Seed))
		} else {
			require.NoError(t, shop.LoadConcurrently(ctx, conn, connect, s, pgtest.Seed))
		}
		var lines []string
		for _, table := range seedTables {
			var sum string
			var pages, visible int64
			require.NoError(t, conn.QueryRow(ctx, "SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM "+table+" t").Scan(&sum))
			require.NoError(t, conn.QueryRow(ctx, "SELECT relpages, relallvisible FROM pg_class WHERE oid = $1::regclass", table).Scan(&pages, &visible))
			lines = append(lines, fmt.Sprintf("rows %s %s; pages %d, all-visible %d", table, sum, pages, visible))
		}
		const shape = `
			SELECT format('constraint %s %s %s validated=%s', c.relname, con.conname, pg_get_constraintdef(con.oid), con.convalidated)
			FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
			WHERE c.relnamespace = current_schema()::regnamespace
			UNION ALL
			SELECT format('index %s %s', indexname, replace(indexdef, current_schema() || '.', ''))
			FROM pg_indexes WHERE schemaname = current_schema()
			UNION ALL
			SELECT format('sequence %s %s', sequencename, last_value)
			FROM pg_sequences WHERE schemaname = current_schema()
			ORDER BY 1`
		rows, err := conn.Query(ctx, shape)
		require.NoError(t, err)
		defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		describe[schema] = append(lines, defs...)
	}
	require.NotEmpty(t, describe["serial"])
	assert.Contains(t, strings.Join(describe["serial"], "\n"), "FOREIGN KEY (order_id) REFERENCES orders(id) validated=t")
	assert.Equal(t, describe["serial"], describe["concurrent"])
}

// BenchmarkSeedHistory seeds a decade of orders (three rows an order: the
// order and its two items) as the benchmarks' templates are seeded: each
// side's tables and months made, then filled (fillHistory: rows, keys and
// indexes, VACUUM (ANALYZE), foreign keys), into a schema dropped before
// each run; and beside them pgbench -i (impl=pgbench) at as many rows. It
// reports the seconds of the two parts of a side's seed apart: its tables
// and months made (tables-s) and filled (fill-s).
// rows/s is lesson 19's size rule: a decade must seed no slower than
// pgbench -i on the same machine.
func BenchmarkSeedHistory(b *testing.B) {
	ctx := context.Background()
	for _, n := range benchOrders() {
		h := decade(n)
		rows := 3 * n
		for _, im := range impls() {
			b.Run(benchkit.Name("impl", im.name)+"/"+benchkit.Name("orders", n), func(b *testing.B) {
				db := pgtest.ShopClone(b, shop.Small)
				var tables, fill time.Duration // the parts of the seed, summed over the loop
				for b.Loop() {
					b.StopTimer()
					_, err := db.Exec(ctx, "DROP SCHEMA IF EXISTS history CASCADE")
					require.NoError(b, err)
					b.StartTimer()
					start := time.Now()
					require.NoError(b, im.createTables(ctx, db))
					require.NoError(b, im.prepareMonths(ctx, db, h.first, h.end()))
					filling := time.Now()
					fillHistory(b, db, h)
					tables, fill = tables+filling.Sub(start), fill+time.Since(filling)
				}
				b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(tables.Seconds()/float64(b.N), "tables-s/op")
				b.ReportMetric(fill.Seconds()/float64(b.N), "fill-s/op")
			})
		}
		b.Run(benchkit.Name("impl", "pgbench")+"/"+benchkit.Name("orders", n), func(b *testing.B) {
			pgbench, err := benchkit.FindPgbench()
			if err != nil {
				b.Fatal(err)
			}
			scale := max(1, rows/100_000)
			db := pgtest.ShopClone(b, shop.Small)
			for b.Loop() {
				benchkit.RunPgbench(b, pgbench, db, "-i", "-q", "-s", strconv.Itoa(scale))
			}
			b.ReportMetric(float64(100_000*scale*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
