// Trace prints the trace of one call of lesson 1's GetUserOrders, naive then
// scalable, as a waterfall in the terminal: a line per span, children under
// their parent, each with its duration and a bar showing when it ran. The
// naive trace has a span per query, 2+N for a user with N orders; the
// scalable one has one.
//
// It seeds a small shop (a busiest user of 100 orders) in a database of its
// own on the server at $WORKSHOP_DATABASE_URL, named like a test run's copy
// under $WORKSHOP_DB_PREFIX (default wvs_), and drops it when done, also on
// Ctrl-C; killed, it leaves it to the next test run, which drops it.
//
// Usage:
//
//	go run ./cmd/trace              # a user with 10 orders
//	go run ./cmd/trace -orders 50   # 1, 2, 4, 5, 10, 20, 25, 50 or 100
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	naive "works-vs-scales/naive/nplusone"
	scalable "works-vs-scales/scalable/nplusone"
	"works-vs-scales/scalable/observability"
	"works-vs-scales/shop"
)

// scale is the shop traced: small enough to seed in well under a second.
var scale = shop.Scale{TopOrders: 100}

func main() {
	orders := flag.Int("orders", 10, "trace the orders of a user with this many (a divisor of 100)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Stdout, os.Getenv(workshopenv.DatabaseURL), os.Getenv(workshopenv.DBPrefix), *orders)
	if err != nil {
		fmt.Fprintln(os.Stderr, "trace:", err)
		os.Exit(1)
	}
}

// errUsage is a command line or environment the tool cannot run with.
var errUsage = errors.New("usage")

func run(ctx context.Context, w io.Writer, url, prefix string, orders int) (err error) {
	userID, ok := scale.UserWithOrders(orders)
	if !ok || orders < 1 {
		return fmt.Errorf("%w: no user with %d orders in a shop whose busiest user has %d: pick one of 1, 2, 4, 5, 10, 20, 25, 50, 100",
			errUsage, orders, scale.TopOrders)
	}
	if url == "" {
		return fmt.Errorf("%w: set %s to a PostgreSQL server, e.g.\n  export %s='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'",
			errUsage, workshopenv.DatabaseURL, workshopenv.DatabaseURL)
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", workshopenv.DatabaseURL, err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	// Named as a test run's copy, under a run lock admin holds: if this
	// process is killed before it drops the database, the next test run
	// (or cmd/dropdbs) does.
	name, err := pgtest.ToolDatabase(ctx, admin, prefix)
	if err != nil {
		return fmt.Errorf("name the database: %w", err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	defer func() { // registered before the database is made, so a half-made one goes too
		if _, dropErr := admin.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); dropErr != nil {
			err = errors.Join(err, fmt.Errorf("drop %s: %w", name, dropErr))
		}
	}()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse %s: %w", workshopenv.DatabaseURL, err)
	}
	cfg.ConnConfig.Database = name
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", name, err)
	}
	err = shop.Load(ctx, conn, scale, pgtest.Seed)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}

	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	defer tp.Shutdown(context.WithoutCancel(ctx))
	cfg.ConnConfig.Tracer = observability.NewQueryTracer(tp)
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", name, err)
	}
	defer db.Close()
	if err := db.Ping(ctx); err != nil { // the first connection's cost is not the trace's
		return fmt.Errorf("connect to %s: %w", name, err)
	}

	for _, impl := range []struct {
		name string
		get  func(context.Context, *pgxpool.Pool, int64) (shop.UserOrders, error)
	}{{"naive", naive.GetUserOrders}, {"scalable", scalable.GetUserOrders}} {
		recorder.Reset()
		spanCtx, root := tp.Tracer("trace").Start(ctx, impl.name+".GetUserOrders")
		_, err := impl.get(spanCtx, db, userID)
		root.End()
		if err != nil {
			return fmt.Errorf("%s.GetUserOrders(%d): %w", impl.name, userID, err)
		}
		spans := recorder.Ended()
		fmt.Fprintf(w, "%s.GetUserOrders, user %d with %d orders: %d spans, %d of them queries\n\n", impl.name, userID, orders, len(spans), len(spans)-1)
		if err := observability.WriteWaterfall(w, spans); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}
