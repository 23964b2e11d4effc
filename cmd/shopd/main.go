// Command shopd serves the shop over HTTP, in the naive or the scalable
// wiring of the lessons' packages (see internal/shopd):
//
//	GET  /users/{id}/orders?limit=&cursor=  a user and their orders
//	GET  /products/{id}                     a product
//	POST /payments                          {"user_id":1,"amount_cents":1250,"currency":"EUR","reference":"order-1"}
//	                                        as Content-Type application/json, with an
//	                                        Idempotency-Key header (printable ASCII, at
//	                                        most 255 bytes)
//
// Every request, answer and error names its JSON members in snake_case. The
// scalable wiring reads a payment strictly: 415 for a body not declared
// application/json, 400 for a member twice or in another case; a payment the
// gateway declines is a 402.
//
// and, on the admin address (-admin-addr, loopback by default; scalable
// wiring), what its operators read:
//
//	GET  /metrics                           Prometheus metrics
//
// Usage:
//
//	go run ./cmd/shopd -init                 # create and load its own database, then serve
//	go run ./cmd/shopd -impl=naive -init
//	go run ./cmd/shopd -db=postgres://…/shop # serve a database that holds the shop already
//	go run ./cmd/shopd -drop                 # drop the database -init made
//
// The database server is -db, by default WORKSHOP_DATABASE_URL. With -init,
// shopd creates a database of its own on that server, named -dbname, loads
// the generated shop into it once (seconds), and reuses it later; it touches
// no database it did not create. Without -gateway, payments go to a fake
// gateway in the process. SIGINT or SIGTERM stops it gracefully: requests in
// flight finish first, then the background work (the scalable wiring's
// outbox relay and reconciler of stale payments) finishes the payment at
// hand, all within -grace.
//
// The scalable wiring serves each client at most -client-rate requests a
// second on each route, in bursts of -client-burst, and no more at once
// than half the turns of each pool's admission control, and answers 429
// beyond (-client-rate=0: no limit per client). A client is the host of the
// connection's remote address; behind a proxy, every request comes from the
// proxy, and -client-header names the header the proxy sets to the real
// client (X-Forwarded-For, X-Real-IP): set it only when every request comes
// through that proxy, since a client may send any header.
//
// The scalable wiring traces -trace-sample of its requests (1% by default; 0
// turns tracing off): a span per request and one per query. -trace-file
// writes the sampled spans there as JSON; without it they are dropped, but
// every request still has a trace id, which its log lines carry.
//
// -init names its database shopd_top10000 after WORKSHOP_DB_PREFIX (wvs_ when
// unset), and -drop drops it; neither touches a database without the comment
// -init leaves on its own.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/sync/errgroup"

	"works-vs-scales/internal/shopd"
	"works-vs-scales/internal/workshopenv"
	observe "works-vs-scales/scalable/observability"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

func main() {
	if err := run(); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "shopd") {
			msg = "shopd: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	impl := flag.String("impl", shopd.Scalable, "wiring: naive, join (naive with lesson 1's JOIN alone), page (join with lesson 2's keyset pages) or scalable")
	// The URL is read from the environment after the flags, not as the flag's
	// default: -h would print its password.
	dbURL := flag.String("db", "", "PostgreSQL URL: the shop's database, or with -init the server to create it on (default $"+workshopenv.DatabaseURL+")")
	initDB := flag.Bool("init", false, "create and load the shop in a database of its own on the -db server (once), and serve it")
	dbName := flag.String("dbname", shopd.DefaultDatabaseName(), "the database -init creates and uses, named after $"+workshopenv.DBPrefix)
	drop := flag.Bool("drop", false, "drop the database -init made, and exit")
	gatewayURL := flag.String("gateway", "", "payment gateway URL (default: a fake gateway in the process)")
	rtt := flag.Duration("rtt", envDuration(workshopenv.RTT), "round-trip time added to every database round trip (default $"+workshopenv.RTT+")")
	grace := flag.Duration("grace", 10*time.Second, "how long a shutdown waits for requests in flight")
	traceSample := flag.Float64("trace-sample", 0.01, "fraction of requests traced by the scalable wiring, 0 to 1 (0: no tracing, and no trace ids in the logs)")
	traceFile := flag.String("trace-file", "", "file to write the sampled traces' spans to, as JSON lines (default: none; sampling still gives the logs their trace ids)")
	adminAddr := flag.String("admin-addr", "127.0.0.1:9090", "address of the admin server, GET /metrics (scalable wiring); empty: none. Keep it off the public network")
	clientRate := flag.Float64("client-rate", shopd.DefaultClientRate, "requests a second each client is served on each route (scalable wiring), and at most half of each pool's turns at once; 429 beyond; 0: no limit per client")
	clientBurst := flag.Int("client-burst", shopd.DefaultClientBurst, "the burst of -client-rate: requests a client may send in a row before its rate holds it")
	clientHeader := flag.String("client-header", "", "header naming the client, set by a trusted proxy in front of the service (its last comma-separated value: X-Forwarded-For, X-Real-IP); default: the remote address")
	flag.Parse()
	if *impl == shopd.Scalable {
		// JSON lines with trace ids (lesson 15); the naive wiring logs as
		// the standard library does.
		slog.SetDefault(observe.NewLogger(os.Stderr, slog.LevelInfo))
	}

	if !slices.Contains(shopd.Impls(), *impl) {
		return fmt.Errorf("-impl %s: want one of %s", shop.Quote(*impl), strings.Join(shopd.Impls(), ", "))
	}
	switch {
	case *initDB && *drop:
		return errors.New("-init and -drop: one or the other")
	case (*initDB || *drop) && *dbName == "":
		return errors.New("-dbname is empty: name the database -init makes and -drop drops")
	case *rtt < 0:
		return fmt.Errorf("-rtt %v: want 0 or more", *rtt)
	case *grace < 0:
		return fmt.Errorf("-grace %v: want 0 or more", *grace)
	case *gatewayURL != "" && !isHTTPURL(*gatewayURL):
		return fmt.Errorf("-gateway %s: want an http:// or https:// URL", shop.Quote(*gatewayURL))
	case !(*clientRate >= 0) || math.IsInf(*clientRate, 0):
		return fmt.Errorf("-client-rate %v: want 0 (no limit) or more requests a second", *clientRate)
	case *clientRate > 0 && *clientBurst < 1:
		return fmt.Errorf("-client-burst %d: want at least 1", *clientBurst)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dbURL == "" {
		*dbURL = os.Getenv(workshopenv.DatabaseURL)
	}
	if *dbURL == "" {
		return fmt.Errorf("no database: set -db or %s, e.g. postgres://postgres@127.0.0.1:5432/postgres (docker compose up -d starts one)", workshopenv.DatabaseURL)
	}
	url := *dbURL
	if *drop {
		dropped, err := shopd.DropDatabase(ctx, url, *dbName)
		if err != nil {
			return err
		}
		slog.Info("dropped", "database", *dbName, "existed", dropped)
		return nil
	}
	if *initDB {
		slog.Info("the shop's database: loaded on first use (seconds), reused after", "database", *dbName, "scale", shop.Small.String())
		var err error
		if url, err = shopd.InitDatabase(ctx, url, *dbName, shop.Small); err != nil {
			return err
		}
	}
	if err := shopd.CheckShop(ctx, url); err != nil {
		return err
	}
	if *rtt > 0 {
		proxied, proxy, err := shopd.ThroughRTTProxy(url, *rtt)
		if err != nil {
			return err
		}
		defer proxy.Close()
		url = proxied
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	gw := &gateway.Client{URL: *gatewayURL}
	if *gatewayURL == "" {
		fake := gatewaytest.Start()
		defer fake.Close()
		gw = fake.Client()
		slog.Info("payments go to a fake gateway in the process", "url", fake.URL())
	}
	tp, closeTraces, err := tracerProvider(*impl, *traceSample, *traceFile)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeTraces(); err != nil {
			slog.Error("traces not all written", "file", *traceFile, "err", err)
		}
	}()
	key := make([]byte, 32)
	rand.Read(key) // page tokens last as long as the process
	scfg := shopd.Config{Impl: *impl, DB: cfg, Gateway: gw, CursorKey: key,
		ClientRate: *clientRate, ClientBurst: *clientBurst, ClientHeader: *clientHeader}
	if *clientRate == 0 {
		scfg.ClientRate = -1 // Config's 0 is the default; the flag's is none
	}
	if tp != nil {
		scfg.Tracer = tp
	}
	svc, err := shopd.New(ctx, scfg)
	if err != nil {
		return err
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	servers, ctx := errgroup.WithContext(ctx) // one stopping stops the other
	if *adminAddr != "" && svc.AdminHandler() != nil {
		adminLn, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("-admin-addr: %w", err)
		}
		slog.Info("admin", "metrics", "http://"+adminLn.Addr().String()+"/metrics")
		servers.Go(func() error { return svc.ServeAdmin(ctx, adminLn, *grace) })
	} else if *adminAddr != "" {
		slog.Info("no admin server: the naive wirings count nothing", "impl", svc.Impl())
	}
	slog.Info("serving", "impl", svc.Impl(), "addr", "http://"+ln.Addr().String(), "rtt", *rtt)
	servers.Go(func() error { return svc.Serve(ctx, ln, *grace) })
	if err := servers.Wait(); err != nil {
		return err
	}
	slog.Info("stopped: every request in flight was answered, the background work finished")
	return nil
}

// isHTTPURL reports whether raw is an absolute http or https URL with a host.
func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// tracerProvider returns the scalable wiring's tracer provider, sampling
// fraction of the requests and writing their spans to file (none if ""), and
// a function that flushes the spans still batched and closes the file. The
// provider is nil when there is nothing to trace: the naive wirings, or a
// fraction of 0.
func tracerProvider(impl string, fraction float64, file string) (*sdktrace.TracerProvider, func() error, error) {
	none := func() error { return nil }
	if !(fraction >= 0 && fraction <= 1) {
		return nil, none, fmt.Errorf("-trace-sample %v: want a fraction from 0 to 1", fraction)
	}
	if impl != shopd.Scalable || fraction == 0 {
		if file != "" {
			return nil, none, fmt.Errorf("-trace-file %s: traces only come from -impl=%s with -trace-sample above 0", shop.Quote(file), shopd.Scalable)
		}
		return nil, none, nil
	}
	var exporter sdktrace.SpanExporter = tracetest.NewNoopExporter()
	closeFile := none
	if file != "" {
		f, err := os.Create(file)
		if err != nil {
			return nil, none, fmt.Errorf("-trace-file: %w", err)
		}
		closeFile = f.Close
		if exporter, err = stdouttrace.New(stdouttrace.WithWriter(f)); err != nil {
			f.Close()
			return nil, none, fmt.Errorf("-trace-file: %w", err)
		}
	}
	tp, err := observe.NewTracerProvider(fraction, exporter)
	if err != nil {
		closeFile()
		return nil, none, fmt.Errorf("-trace-sample: %w", err)
	}
	return tp, func() error { return errors.Join(tp.Shutdown(context.Background()), closeFile()) }, nil
}

// envDuration returns the duration in the environment variable, or 0.
func envDuration(name string) time.Duration {
	d, err := time.ParseDuration(os.Getenv(name))
	if err != nil {
		if os.Getenv(name) != "" {
			slog.Warn("ignored: not a duration", "var", name, "value", os.Getenv(name), "err", errors.Unwrap(err))
		}
		return 0
	}
	return d
}
