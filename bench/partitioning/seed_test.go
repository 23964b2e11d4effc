package partitioning

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

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
	rows := int64(0)
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
			rows = 0
			for _, t := range seedTables {
				var n int64
				if err := db.QueryRow(ctx, "SELECT count(*) FROM "+schema+"."+t).Scan(&n); err != nil {
					b.Fatal(err)
				}
				rows += n
			}
			b.ReportMetric(float64(rows*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
		})
	}
	scale := max(1, int(rows+50_000)/100_000)
	b.Run(benchkit.Name("impl", "pgbench")+"/"+benchkit.Name("orders", s.Orders()), func(b *testing.B) {
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
