package migrations

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/load"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// The benchmarks of lesson 20 run each migration under open-loop load: a
// small service in a process of its own (service_test.go) answers the order
// page (a read of orders) and places or ships orders (writes), and
// internal/load sends it requests from this process at a fixed rate before,
// during and after the migration. What the requests saw
// in each phase is the result. Each iteration migrates a fresh copy: run
// them with -benchtime 1x.

const (
	loadRate     = 200              // requests a second
	loadBefore   = time.Second      // of load before the migration starts
	loadAfter    = time.Second      // and after it ends
	loadDeadline = time.Second      // the service's deadline for a request
	loadPool     = 32               // the service's connections
	readerHold   = 2 * time.Second  // how long the long read stays open in LockQueue
	loadMax      = 10 * time.Minute // a bound on a run's load, never reached
)

// phase is what the requests sent in one phase of a run saw.
type phase struct {
	latencies      []time.Duration // every request's, failed ones included
	writeLatencies []time.Duration
	failed         int // not a 2xx, or no answer
}

func (p *phase) add(a load.Answer) {
	p.latencies = append(p.latencies, a.Latency)
	if a.Method == http.MethodPost {
		p.writeLatencies = append(p.writeLatencies, a.Latency)
	}
	if a.Status < 200 || a.Status > 299 {
		p.failed++
	}
}

// quantile returns the q-quantile of latencies, in milliseconds (nearest
// rank).
func quantile(latencies []time.Duration, q float64) float64 {
	if len(latencies) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(latencies))
	i := int(q*float64(len(sorted))+0.999999) - 1
	return float64(sorted[max(0, min(i, len(sorted)-1))]) / float64(time.Millisecond)
}

// run is one migration under load: the phases, and how long the migration
// took.
type run struct {
	before, during, after phase
	took                  time.Duration
}

// loadPools returns the size of the service's pool and of the benchmark's
// own, the same, and the label to append to the benchmark's name: loadPool,
// or under a room's budget (WORKSHOP_MAX_CONNS) half of what it leaves the
// benchmark's pools (benchkit.ClampToBudget), labelled /budget-pool=N; a
// budget that leaves fewer than two each (a held lock and the migration;
// the service's) skips the benchmark, saying so.
func loadPools(b *testing.B) (int32, string) {
	both, label := benchkit.ClampToBudget(b, 2*loadPool)
	if label == "" {
		return loadPool, ""
	}
	benchkit.SkipAboveBudget(b, 2*2)
	return both / 2, fmt.Sprintf("/budget-pool=%d", both/2)
}

// underLoad drives the service at db at loadRate, sending the seq-th request
// to target(seq), for loadBefore; then runs change, and loadAfter more once
// it returns.
func underLoad(b *testing.B, db *pgxpool.Pool, target func(seq uint64) (method, path string), change func(ctx context.Context) error) run {
	b.Helper()
	url := startService(b, db, db.Config().MaxConns)
	var (
		mu             sync.Mutex
		answers        []load.Answer
		started, ended time.Time
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	cfg := load.Config{
		Targets: func(seq uint64) load.Target {
			method, path := target(seq)
			return load.Target{Method: method, URL: url + path}
		},
		Duration: loadMax,
		Timeout:  2 * loadDeadline,
		OnAnswer: func(a load.Answer) {
			mu.Lock()
			answers = append(answers, a)
			mu.Unlock()
		},
	}
	loaded := make(chan error, 1)
	go func() {
		_, err := load.Open(ctx, cfg, loadRate)
		loaded <- err
	}()
	time.Sleep(loadBefore)
	started = time.Now()
	err := change(ctx)
	ended = time.Now()
	if err != nil {
		b.Fatalf("the migration under load: %v", err)
	}
	time.Sleep(loadAfter)
	stop()
	<-loaded // cancelled: its error says so
	r := run{took: ended.Sub(started)}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range answers {
		switch {
		case a.Sent.Before(started):
			r.before.add(a)
		case a.Sent.Before(ended):
			r.during.add(a)
		case a.Sent.Before(ended.Add(loadAfter)):
			r.after.add(a)
		}
	}
	return r
}

// report reports a run's results, as medians of the iterations.
func (r run) report(b *testing.B) {
	b.ReportMetric(quantile(r.before.latencies, 0.99), "before-p99-ms")
	b.ReportMetric(quantile(r.during.latencies, 0.99), "during-p99-ms")
	b.ReportMetric(quantile(r.after.latencies, 0.99), "after-p99-ms")
	if n := len(r.during.latencies); n > 0 {
		b.ReportMetric(100*float64(r.during.failed)/float64(n), "during-errors-%")
	}
	b.ReportMetric(float64(r.took)/float64(time.Millisecond), "took-ms")
}

// reads sends every request to the order page of users 1 to 1,000.
func reads(seq uint64) (string, string) {
	return http.MethodGet, fmt.Sprintf("/orders?user=%d", 1+seq%1000)
}

// BenchmarkLockQueue: a transaction that read orders stays open readerHold;
// the migration that adds a column starts just after it. The naive ALTER
// waits for it, and every request waits behind the ALTER; the scalable one
// gives up after its lock_timeout, and tries again, until the reader ends.
func BenchmarkLockQueue(b *testing.B) {
	pool, label := loadPools(b) // a room's budget: smaller pools, labelled
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name)+label, func(b *testing.B) {
			var runs []run
			for b.Loop() {
				db := benchkit.SharedPool(b, pgtest.ShopClone(b, shop.Small), pool)
				runs = append(runs, underLoad(b, db, reads, func(ctx context.Context) error {
					release := benchkit.LockTable(b, db, "orders", "ACCESS SHARE")
					timer := time.AfterFunc(readerHold, release)
					defer timer.Stop()
					return impl.migrate(ctx, db, impl.addTotal)
				}))
			}
			runs[len(runs)-1].report(b)
		})
	}
}

// BenchmarkCreateIndex: the index on orders.total_cents is built while half
// the requests place orders. The naive CREATE INDEX holds every write until
// it is built; CONCURRENTLY lets them through, and takes longer.
func BenchmarkCreateIndex(b *testing.B) {
	placesAndReads := func(seq uint64) (string, string) {
		if seq%2 == 0 {
			return http.MethodPost, fmt.Sprintf("/place?user=%d", 1+seq%1000)
		}
		return reads(seq)
	}
	pool, label := loadPools(b) // a room's budget: smaller pools, labelled
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name)+label, func(b *testing.B) {
			var runs []run
			for b.Loop() {
				db := benchkit.SharedPool(b, pgtest.ShopClone(b, benchkit.Scale()), pool)
				if err := impl.migrate(context.Background(), db, impl.backfillTotal); err != nil {
					b.Fatal(err)
				}
				runs = append(runs, underLoad(b, db, placesAndReads, func(ctx context.Context) error {
					return impl.migrate(ctx, db, impl.indexTotal)
				}))
			}
			r := runs[len(runs)-1]
			r.report(b)
			b.ReportMetric(quantile(r.during.writeLatencies, 1), "during-write-max-ms")
		})
	}
}

// BenchmarkBackfill: every order's total is filled in while half the
// requests ship orders, on a copy of the shop that a streaming replica
// (lesson 18's) replays. The naive backfill, one UPDATE, holds every order it
// reached until it commits; the scalable one, a batch at a time, holds a
// batch. It reports the WAL the backfill wrote (pg_stat_statements, this
// database's UPDATEs only), the replica's largest lag meanwhile, and the dead
// row versions it left.
func BenchmarkBackfill(b *testing.B) {
	pool, label := loadPools(b) // a room's budget: smaller pools, labelled
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name)+label, func(b *testing.B) {
			var (
				r                    run
				walBytes, deadTuples int64
				maxLag               int64
			)
			for b.Loop() {
				primary, _ := pgtest.ShopCloneWithReplica(b, benchkit.Scale())
				db := benchkit.SharedPool(b, primary, pool)
				ctx := context.Background()
				if err := impl.migrate(ctx, db, impl.addTotal); err != nil {
					b.Fatal(err)
				}
				var orders int64
				if err := db.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&orders); err != nil {
					b.Fatal(err)
				}
				ships := func(seq uint64) (string, string) {
					if seq%2 == 0 {
						return http.MethodPost, fmt.Sprintf("/ship?order=%d", 1+(seq*7919)%uint64(orders))
					}
					return reads(seq)
				}
				wal := walOfBackfill(b, db)
				done := make(chan struct{})
				lags := make(chan int64, 1)
				go func() {
					var worst int64
					tick := time.NewTicker(10 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-done:
							lags <- worst
							return
						case <-tick.C:
							if lag, err := replicaLag(db); err == nil {
								worst = max(worst, lag)
							}
						}
					}
				}()
				r = underLoad(b, db, ships, func(ctx context.Context) error {
					defer close(done)
					return impl.migrate(ctx, db, impl.backfillTotal)
				})
				maxLag = <-lags
				walBytes = walOfBackfill(b, db) - wal
				deadTuples = deadRows(b, db)
			}
			r.report(b)
			b.ReportMetric(quantile(r.during.writeLatencies, 1), "during-write-max-ms")
			b.ReportMetric(float64(walBytes), "wal-bytes")
			b.ReportMetric(float64(maxLag), "replica-lag-bytes")
			b.ReportMetric(float64(deadTuples), "dead-tuples")
		})
	}
}

// replicaLag returns how far, in bytes of WAL, the replica of db's server is
// behind it, from the primary's own view of its standbys.
func replicaLag(db *pgxpool.Pool) (int64, error) {
	const lag = `SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint FROM pg_stat_replication`
	var behind int64
	err := db.QueryRow(context.Background(), lag).Scan(&behind)
	return behind, err
}

// walOfBackfill returns the WAL written so far by the statements of db's
// database that set orders.total_cents, as pg_stat_statements counts it.
func walOfBackfill(b *testing.B, db *pgxpool.Pool) int64 {
	b.Helper()
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		b.Fatalf("pg_stat_statements (lesson 15's set-up, lessons/TRAINER.md): %v", err)
	}
	const wal = `SELECT coalesce(sum(wal_bytes), 0)::bigint FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND query LIKE '%SET total_cents%'`
	var bytes int64
	if err := db.QueryRow(ctx, wal).Scan(&bytes); err != nil {
		b.Fatal(err)
	}
	return bytes
}

// deadRows returns the dead row versions of orders, once the statistics
// have counted every update of the backfill.
func deadRows(b *testing.B, db *pgxpool.Pool) int64 {
	b.Helper()
	const stats = `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'orders'`
	var dead int64
	// The backends flush their counts within a second of going idle.
	time.Sleep(1500 * time.Millisecond)
	if err := db.QueryRow(context.Background(), stats).Scan(&dead); err != nil {
		b.Fatal(err)
	}
	return dead
}
