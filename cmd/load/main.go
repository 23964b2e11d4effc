// Command load measures cmd/shopd under an open-loop load: for each rate, it
// sends GET /users/{id}/orders at that rate for a while, whatever the service
// answers (internal/load's open loop; the users as shopd.OrdersTargets draws
// them), and records how long every answer took, how many failed, how long
// requests waited for a pooled connection, and how many database backends
// were busy.
//
// It starts the service in its own process, in each wiring asked, on a
// loopback port, over real TCP, against the database cmd/shopd -init makes
// (created and loaded on first use). It writes benchmark-format lines, one
// per wiring and rate (BenchmarkShopd/impl=naive/rate=100), which cmd/lessons
// turns into lesson 17's tables and charts, and a table on stderr.
//
//	go run ./cmd/load -impl=naive,scalable -rates=50,100,200,400 -duration=3s
//	go run ./cmd/load -impl=scalable -rtt=1ms -o mine/17-rtt1ms.bench
//
// The time per operation it reports is the mean latency, as internal/load
// writes it: a chart of it against the rate is the throughput–latency curve.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/load"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway/gatewaytest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	impls    []string
	rates    []int
	duration time.Duration
	timeout  time.Duration
	deadline time.Duration
	count    int
	rtt      time.Duration
	dbURL    string
	dbName   string
	out      string
}

func parseFlags() (options, error) {
	var o options
	impls := flag.String("impl", "naive,scalable", "wirings to measure, comma-separated: naive, join (naive with lesson 1's JOIN alone), page (join with lesson 2's keyset pages), scalable")
	rates := flag.String("rates", "50,100,200,400,800", "request rates per second, comma-separated, each held for -duration")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long each rate is held")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Second, "how long a client waits for an answer")
	flag.DurationVar(&o.deadline, "deadline", time.Second, "how long a user waits: a success slower than this is not goodput")
	flag.IntVar(&o.count, "count", 1, "how many times every rate is measured")
	flag.DurationVar(&o.rtt, "rtt", 0, "round-trip time added to every database round trip (as WORKSHOP_RTT)")
	flag.StringVar(&o.dbURL, "db", os.Getenv(workshopenv.DatabaseURL), "PostgreSQL server URL (default $"+workshopenv.DatabaseURL+")")
	flag.StringVar(&o.dbName, "dbname", shopd.DefaultDatabaseName(), "the shop database, as cmd/shopd -init makes it (default from $"+workshopenv.DBPrefix+")")
	flag.StringVar(&o.out, "o", "", "write the benchmark lines to this file instead of stdout")
	flag.Parse()
	for _, impl := range strings.Split(*impls, ",") {
		if !slices.Contains(shopd.Impls(), impl) {
			return o, fmt.Errorf("-impl: %s is not one of %s", shop.Quote(impl), strings.Join(shopd.Impls(), ", "))
		}
		o.impls = append(o.impls, impl)
	}
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(r)
		if err != nil || n < 1 {
			return o, fmt.Errorf("-rates: %s is not a positive rate", shop.Quote(r))
		}
		o.rates = append(o.rates, n)
	}
	if o.duration <= 0 || o.timeout <= 0 || o.count < 1 || o.rtt < 0 {
		return o, fmt.Errorf("-duration, -timeout and -count must be positive, -rtt not negative")
	}
	if o.dbURL == "" {
		return o, fmt.Errorf("no database: set -db or %s, e.g. postgres://postgres@127.0.0.1:5432/postgres", workshopenv.DatabaseURL)
	}
	return o, nil
}

// target is one wiring of the service, running in this process.
type target struct {
	svc *shopd.Service
	url string
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := io.Writer(os.Stdout)
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	dbURL, err := shopd.InitDatabase(ctx, o.dbURL, o.dbName, shop.Small)
	if err != nil {
		return err
	}
	monitor, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", o.dbName, err)
	}
	defer monitor.Close(context.Background())
	if err := writeConfig(ctx, out, monitor, o.rtt); err != nil {
		return err
	}
	serveURL := dbURL
	if o.rtt > 0 {
		proxied, proxy, err := shopd.ThroughRTTProxy(dbURL, o.rtt)
		if err != nil {
			return err
		}
		defer proxy.Close()
		serveURL = proxied
	}
	targets := make(map[string]target)
	var serving sync.WaitGroup
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer func() { stopServing(); serving.Wait() }()
	fake := gatewaytest.Start()
	defer fake.Close()
	for _, impl := range o.impls {
		cfg, err := pgxpool.ParseConfig(serveURL)
		if err != nil {
			return err
		}
		key := make([]byte, 32)
		rand.Read(key)
		// No limit per client: this one process plays every user, from one
		// address.
		svc, err := shopd.New(ctx, shopd.Config{Impl: impl, DB: cfg, Gateway: fake.Client(), CursorKey: key, ClientRate: -1})
		if err != nil {
			return err
		}
		defer svc.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		serving.Go(func() { svc.Serve(serveCtx, ln, o.timeout) })
		targets[impl] = target{svc: svc, url: "http://" + ln.Addr().String()}
		// Warm up: connections opened, statements prepared, caches filled.
		warmUp := load.Config{Targets: shopd.OrdersTargets(targets[impl].url, shop.Small, 0), Duration: time.Second, Timeout: o.timeout}
		if _, err := load.Open(ctx, warmUp, o.rates[0]); err != nil {
			return err
		}
	}

	table := tabwriter.NewWriter(os.Stderr, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(table, "impl\trate/s\tgoodput/s\tp50\tp99\tmax\ttimed out\tother errors\tpool wait\tconns held\tbackends busy\t")
	for run := range o.count {
		for _, rate := range o.rates {
			for _, impl := range o.impls {
				t := targets[impl]
				cfg := load.Config{Targets: shopd.OrdersTargets(t.url, shop.Small, uint64(run+1)), Duration: o.duration, Timeout: o.timeout, Deadline: o.deadline}
				st, err := step(ctx, monitor, t, cfg, rate)
				if err != nil {
					return err
				}
				if err := st.write(out, impl); err != nil {
					return err
				}
				fmt.Fprintf(table, "%s\t%d\t%.0f\t%v\t%v\t%v\t%d\t%d\t%.2fms\t%.1f\t%.1f\t\n", impl, rate, st.Goodput(), st.P50.Round(10*time.Microsecond), st.P99.Round(10*time.Microsecond), st.Max.Round(time.Millisecond), st.Timeouts, st.Errors-st.Timeouts, st.poolWaitMs, st.connsHeld, st.backendsMean)
			}
		}
	}
	return table.Flush()
}

// stepResult is a load step's result and what the pool and the database did.
type stepResult struct {
	load.Step
	poolWaitMs    float64 // mean wait for a connection, per acquire
	poolWaitedPct float64 // acquires that had to wait
	connsHeld     float64 // connections the service's pools had handed out, sampled
	backendsMean  float64 // active backends on the database, sampled
	backendsMax   int
}

// step runs one load step at rate against t, sampling every 10 ms meanwhile
// the connections the service holds and the database's active backends: a
// connection held while its backend is idle waits on a round trip, or on the
// application.
func step(ctx context.Context, monitor *pgx.Conn, t target, cfg load.Config, rate int) (stepResult, error) {
	before := t.svc.PoolStats()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var busy, held []int
	var sampleErr error
	var sampled sync.WaitGroup
	sampled.Go(func() {
		// Backends of this database running a statement, this one aside.
		const activeQuery = `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			// The query runs on ctx, not sampleCtx: pgx closes a connection
			// whose query is cancelled, and the next step samples on it too.
			var n int
			if err := monitor.QueryRow(ctx, activeQuery).Scan(&n); err != nil {
				sampleErr = fmt.Errorf("sample the active backends: %w", err)
				return
			}
			busy = append(busy, n)
			held = append(held, int(t.svc.PoolStats().AcquiredConns))
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	})
	steps, err := load.Open(ctx, cfg, rate)
	stopSampling()
	sampled.Wait()
	if err != nil {
		return stepResult{}, err
	}
	if sampleErr != nil {
		return stepResult{}, sampleErr
	}
	after := t.svc.PoolStats()
	st := stepResult{Step: steps[0]}
	if n := after.AcquireCount - before.AcquireCount; n > 0 {
		st.poolWaitMs = float64((after.AcquireDuration - before.AcquireDuration).Microseconds()) / 1000 / float64(n)
		st.poolWaitedPct = 100 * float64(after.EmptyAcquireCount-before.EmptyAcquireCount) / float64(n)
	}
	st.backendsMean, st.backendsMax = meanMax(busy)
	st.connsHeld, _ = meanMax(held)
	return st, nil
}

func meanMax(samples []int) (float64, int) {
	if len(samples) == 0 {
		return 0, 0
	}
	sum, top := 0, 0
	for _, s := range samples {
		sum, top = sum+s, max(top, s)
	}
	return float64(sum) / float64(len(samples)), top
}

// write prints the step as internal/load's benchmark line, with the pool's
// and the database's values added.
func (s stepResult) write(w io.Writer, impl string) error {
	var line strings.Builder
	if err := load.WriteBench(&line, "Shopd", impl, []load.Step{s.Step}); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s\t%.4g pool-wait-ms\t%.4g pool-waited-%%\t%.3g conns-held\t%.3g backends-busy\t%d backends-busy-max\n",
		strings.TrimSuffix(line.String(), "\n"), s.poolWaitMs, s.poolWaitedPct, s.connsHeld, s.backendsMean, s.backendsMax)
	return err
}

// writeConfig writes the configuration lines of a benchmark run: where it ran.
func writeConfig(ctx context.Context, w io.Writer, db *pgx.Conn, rtt time.Duration) error {
	var version string
	if err := db.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	settings := map[string]string{"fsync": "", "shared_buffers": "", "synchronous_commit": ""}
	for name := range settings {
		var value string
		if err := db.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&value); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
		settings[name] = value
	}
	added := "none"
	if rtt > 0 {
		added = rtt.String()
	}
	fmt.Fprintf(w, "go: %s\ngomaxprocs: %d\ndate: %s\n", runtime.Version(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.DateOnly))
	if commit, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		fmt.Fprintf(w, "commit: %s\n", strings.TrimSpace(string(commit)))
	}
	fmt.Fprintf(w, "postgres: %s\npostgres-from: %s\n", version, workshopenv.DatabaseURL)
	for _, name := range []string{"fsync", "shared_buffers", "synchronous_commit"} {
		fmt.Fprintf(w, "postgres-%s: %s\n", name, settings[name])
	}
	fmt.Fprintf(w, "rtt-added: %s\nload: open loop, users uniform over the shop %v (orders per user a power law)\n", added, shop.Small)
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: works-vs-scales/cmd/load\n", runtime.GOOS, runtime.GOARCH)
	if cpu := cpuName(); cpu != "" {
		fmt.Fprintf(w, "cpu: %s\n", cpu)
	}
	return nil
}

// cpuName is the CPU's model name, as /proc/cpuinfo says it ("" elsewhere).
func cpuName() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return ""
}
