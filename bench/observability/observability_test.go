package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/syncbuf"
	naivenplusone "works-vs-scales/naive/nplusone"
	naive "works-vs-scales/naive/observability"
	scalablenplusone "works-vs-scales/scalable/nplusone"
	scalable "works-vs-scales/scalable/observability"
	"works-vs-scales/shop"
)

// getUserOrdersImpls are lesson 1's ways to load a user's orders, whose
// traces this lesson reads.
var getUserOrdersImpls = []struct {
	name string
	get  func(context.Context, *pgxpool.Pool, int64) (shop.UserOrders, error)
	// cost is the statements and round trips the database sees for n orders.
	cost func(n int64) (statements, roundTrips int64)
}{
	{"naive", naivenplusone.GetUserOrders, func(n int64) (int64, int64) { return n + 2, n + 2 }},
	{"batch", scalablenplusone.GetUserOrdersBatch, func(n int64) (int64, int64) {
		if n == 0 {
			return 2, 1
		}
		return n + 2, 2
	}},
	{"scalable", scalablenplusone.GetUserOrders, func(int64) (int64, int64) { return 1, 1 }},
}

// Lesson 15: a request that explains itself. Lesson 1's N+1 found by its
// trace and by pg_stat_statements, ProcessOrder logged with strings against
// ProcessOrder traced, logged and counted, what that costs, and what a user
// id as a metric label costs.

var waterfallOut = flag.String("waterfall-out", "", "write lesson 15's waterfalls and pg_stat_statements table to this file")

// recordingTracing returns a tracer provider keeping every ended span in
// memory, and the recorder that holds them.
func recordingTracing(tb testing.TB) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	tb.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			tb.Errorf("shut the tracer provider down: %v", err)
		}
	})
	return tp, recorder
}

// traced runs call under a new root span named name and returns the spans
// of that trace, the root last.
func traced(ctx context.Context, tp trace.TracerProvider, recorder *tracetest.SpanRecorder, name string, call func(context.Context) error) ([]sdktrace.ReadOnlySpan, error) {
	ctx, root := tp.Tracer("bench").Start(ctx, name)
	err := call(ctx)
	root.End()
	var spans []sdktrace.ReadOnlySpan
	for _, s := range recorder.Ended() {
		if s.SpanContext().TraceID() == root.SpanContext().TraceID() {
			spans = append(spans, s)
		}
	}
	return spans, err
}

// dbSpans returns how many of spans a database span is (one per round trip:
// a query or a batch) and how many statements they hold (a batch holds one
// per event).
func dbSpans(spans []sdktrace.ReadOnlySpan) (roundTrips, statements int64) {
	for _, s := range spans {
		if s.SpanKind() != trace.SpanKindClient {
			continue
		}
		roundTrips++
		if s.Name() == "BATCH" {
			statements += int64(len(s.Events()))
		} else {
			statements++
		}
	}
	return roundTrips, statements
}

func waterfall(spans []sdktrace.ReadOnlySpan) string {
	var out strings.Builder
	if err := scalable.WriteWaterfall(&out, spans); err != nil {
		return err.Error()
	}
	return out.String()
}

// TestObserveTraceFindsNPlusOne traces lesson 1's GetUserOrders: the trace of
// one call holds a span per round trip, N+2 for the naive version, one for
// the scalable one, and the batch's spans hold its statements.
func TestObserveTraceFindsNPlusOne(t *testing.T) {
	tp, recorder := recordingTracing(t)
	db := pgtest.ShopCloneTraced(t, shop.Small, scalable.NewQueryTracer(tp))
	ctx := context.Background()
	var shown strings.Builder
	for _, n := range []int{0, 1, 10, 100} {
		userID, ok := shop.Small.UserWithOrders(n)
		require.True(t, ok, "the small shop has a user with %d orders", n)
		for _, impl := range getUserOrdersImpls {
			t.Run(benchkit.Name("impl", impl.name)+"/"+benchkit.Name("orders", n), func(t *testing.T) {
				spans, err := traced(ctx, tp, recorder, "GetUserOrders", func(ctx context.Context) error {
					_, err := impl.get(ctx, db, userID)
					return err
				})
				require.NoError(t, err)
				wantStatements, wantRoundTrips := impl.cost(int64(n))
				roundTrips, statements := dbSpans(spans)
				assert.Equal(t, wantRoundTrips, roundTrips, "database spans in the trace:\n%s", waterfall(spans))
				assert.Equal(t, wantStatements, statements, "statements in the trace's database spans")
				assert.Equal(t, int(roundTrips)+1, len(spans), "spans: the root and one per round trip")
				if n == 10 && impl.name != "batch" {
					fmt.Fprintf(&shown, "%s.GetUserOrders, user %d with %d orders: %d spans\n\n%s\n", impl.name, userID, n, len(spans), waterfall(spans))
				}
			})
		}
	}
	t.Logf("the traces:\n%s", shown.String())
	if *waterfallOut != "" {
		writeWaterfalls(t, *waterfallOut, shown.String(), pgStatStatementsTop(t))
	}
}

// pgStatStatementsTop runs naive GetUserOrders for a user with 100 orders on
// a fresh copy of the shop and returns the statements pg_stat_statements
// counted there, most called first, a line each.
func pgStatStatementsTop(t *testing.T) string {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	userID, _ := shop.Small.UserWithOrders(100)
	top := statementsCalled(t, db, func() {
		_, err := naivenplusone.GetUserOrders(ctx, db, userID)
		require.NoError(t, err)
	})
	var out strings.Builder
	fmt.Fprintf(&out, "%6s %6s  %s\n", "calls", "rows", "query")
	for _, s := range top {
		fmt.Fprintf(&out, "%6d %6d  %s\n", s.calls, s.rows, strings.Join(strings.Fields(s.query), " "))
	}
	return out.String()
}

type statementStats struct {
	query       string
	calls, rows int64
}

// statementsCalled returns what pg_stat_statements counted in db's database
// while run ran: the calls and rows of each statement, most called first.
// The extension's counters are the server's, shared by every database and
// every run on it; this takes the difference, in this database only.
func statementsCalled(t *testing.T, db *pgxpool.Pool, run func()) []statementStats {
	t.Helper()
	ctx := context.Background()
	// What the server lacks is its DBA's to grant, once, never a trainee's to change.
	const askTheDBA = "; the server's DBA sets it up once, as lessons/TRAINER.md (\"What a server needs\") says, " +
		"or use a PostgreSQL of your own (docker compose up -d, or no WORKSHOP_DATABASE_URL and Docker running)"
	const loaded = `SELECT 'pg_stat_statements' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))`
	var ok bool
	require.NoError(t, db.QueryRow(ctx, loaded).Scan(&ok),
		"the user of WORKSHOP_DATABASE_URL may not read shared_preload_libraries (it needs pg_read_all_settings)"+askTheDBA)
	require.True(t, ok, "pg_stat_statements is not in this server's shared_preload_libraries"+askTheDBA)
	_, err := db.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
	require.NoError(t, err, "only a superuser may create pg_stat_statements, unless it is in template1 already"+askTheDBA)

	// Only this database's rows; the extension's own queries are left out.
	const stats = `SELECT queryid, query, calls, rows FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND query NOT LIKE '%pg_stat_statements%'`
	snapshot := func() map[int64]statementStats {
		rows, err := db.Query(ctx, stats)
		require.NoError(t, err)
		byID := make(map[int64]statementStats)
		for rows.Next() {
			var id int64
			var s statementStats
			require.NoError(t, rows.Scan(&id, &s.query, &s.calls, &s.rows))
			byID[id] = s
		}
		require.NoError(t, rows.Err())
		return byID
	}
	before := snapshot()
	run()
	var called []statementStats
	for id, s := range snapshot() {
		s.calls -= before[id].calls
		s.rows -= before[id].rows
		if s.calls > 0 {
			called = append(called, s)
		}
	}
	slicesSortByCalls(called)
	return called
}

func slicesSortByCalls(s []statementStats) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && (s[j].calls > s[j-1].calls || s[j].calls == s[j-1].calls && s[j].query < s[j-1].query); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestObservePgStatStatementsFindsNPlusOne: after naive GetUserOrders for a
// user with 100 orders, the database's own statistics show the items query
// on top, called 100 times, once per order.
func TestObservePgStatStatementsFindsNPlusOne(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	userID, _ := shop.Small.UserWithOrders(100)
	top := statementsCalled(t, db, func() {
		_, err := naivenplusone.GetUserOrders(ctx, db, userID)
		require.NoError(t, err)
	})
	require.Len(t, top, 3, "the user, the orders and the items statements: %v", top)
	assert.Contains(t, top[0].query, "FROM order_items")
	assert.Equal(t, int64(100), top[0].calls, "the items query, once per order")
	assert.Equal(t, int64(1), top[1].calls)
	assert.Equal(t, int64(1), top[2].calls)

	top = statementsCalled(t, db, func() {
		_, err := scalablenplusone.GetUserOrders(ctx, db, userID)
		require.NoError(t, err)
	})
	require.Len(t, top, 1, "scalable GetUserOrders is one statement: %v", top)
	assert.Equal(t, int64(1), top[0].calls)
}

// writeWaterfalls writes lesson 15's results file: the waterfalls, then the
// pg_stat_statements table.
func writeWaterfalls(t *testing.T, path, waterfalls, statements string) {
	var out bytes.Buffer
	fmt.Fprintf(&out, "# go test -count 1 -run '^TestObserveTraceFindsNPlusOne$' ./bench/observability -args -waterfall-out=...\n")
	fmt.Fprintf(&out, "# %s, %s\n\n", pgtest.ServerVersion(t), time.Now().UTC().Format(time.DateOnly))
	out.WriteString(waterfalls)
	fmt.Fprintf(&out, "pg_stat_statements of that database after naive.GetUserOrders for a user with 100 orders:\n\n%s", statements)
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
}

// notifierFunc is a Notifier made of a function.
type notifierFunc func(ctx context.Context, userID, orderID int64) error

func (f notifierFunc) Notify(ctx context.Context, userID, orderID int64) error {
	return f(ctx, userID, orderID)
}

var notifyNobody = notifierFunc(func(context.Context, int64, int64) error { return nil })

// orderProcessor is what both ProcessOrders do.
type orderProcessor interface {
	ProcessOrder(ctx context.Context, userID, productID int64, quantity int32) (int64, error)
}

// TestObserveProcessOrdersAgree: both versions place the same order, at the
// product's price, and refuse the same hostile input with the same errors.
func TestObserveProcessOrdersAgree(t *testing.T) {
	tp, _ := recordingTracing(t)
	db := pgtest.ShopCloneTraced(t, shop.Small, scalable.NewQueryTracer(tp))
	ctx := context.Background()
	var notified atomic.Int64
	notifier := notifierFunc(func(_ context.Context, _, orderID int64) error {
		if orderID == 0 {
			return errors.New("notified of order 0")
		}
		notified.Add(1)
		return nil
	})
	works, err := naive.NewService(naive.Config{DB: db, Notifier: notifier, Logger: log.New(io.Discard, "", 0)})
	require.NoError(t, err)
	scales, err := scalable.NewService(scalable.Config{
		DB: db, Notifier: notifier, Logger: scalable.NewLogger(io.Discard, slog.LevelDebug),
		Tracing: tp, Metrics: scalable.NewMetrics(),
	})
	require.NoError(t, err)

	const price = `SELECT price_cents FROM products WHERE id = $1`
	var want int64
	require.NoError(t, db.QueryRow(ctx, price, 3).Scan(&want))
	for _, impl := range []struct {
		name string
		svc  orderProcessor
	}{{"naive", works}, {"scalable", scales}} {
		orderID, err := impl.svc.ProcessOrder(ctx, 2, 3, 4)
		require.NoError(t, err, impl.name)
		var user, product int64
		var quantity int32
		var paid int64
		const placed = `SELECT o.user_id, i.product_id, i.quantity, i.price_cents FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.id = $1`
		require.NoError(t, db.QueryRow(ctx, placed, orderID).Scan(&user, &product, &quantity, &paid), impl.name)
		assert.Equal(t, []int64{2, 3, 4, want}, []int64{user, product, int64(quantity), paid}, impl.name)

		for _, bad := range []struct {
			userID, productID int64
			quantity          int32
			want              error
		}{
			{2, 3, 0, shop.ErrInvalidQuantity},
			{2, 3, -1, shop.ErrInvalidQuantity},
			{-1, 3, 1, shop.ErrUserNotFound},
			{1 << 62, 3, 1, shop.ErrUserNotFound},
			{2, 0, 1, shop.ErrProductNotFound},
			{2, 1 << 62, 1, shop.ErrProductNotFound},
		} {
			_, err := impl.svc.ProcessOrder(ctx, bad.userID, bad.productID, bad.quantity)
			assert.ErrorIs(t, err, bad.want, "%s.ProcessOrder(%d, %d, %d)", impl.name, bad.userID, bad.productID, bad.quantity)
		}
	}
	assert.Equal(t, int64(2), notified.Load(), "each version told the user once")
	const refused = `SELECT count(*) FROM orders WHERE user_id = 2 AND created_at > now() - interval '1 hour'`
	var orders int
	require.NoError(t, db.QueryRow(ctx, refused).Scan(&orders))
	assert.Equal(t, 2, orders, "refused orders leave no row")
}

// TestObserveProcessOrderFailsToNotify: an order placed whose user could not
// be told is returned with the error, by both versions.
func TestObserveProcessOrderFailsToNotify(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	down := errors.New("mailer down")
	notifier := notifierFunc(func(context.Context, int64, int64) error { return down })
	works, err := naive.NewService(naive.Config{DB: db, Notifier: notifier, Logger: log.New(io.Discard, "", 0)})
	require.NoError(t, err)
	scales, err := scalable.NewService(scalable.Config{
		DB: db, Notifier: notifier, Logger: scalable.NewLogger(io.Discard, slog.LevelInfo),
		Tracing: noop.NewTracerProvider(), Metrics: scalable.NewMetrics(),
	})
	require.NoError(t, err)
	for _, svc := range []orderProcessor{works, scales} {
		orderID, err := svc.ProcessOrder(context.Background(), 2, 3, 1)
		assert.ErrorIs(t, err, down)
		assert.NotZero(t, orderID, "the order is placed")
	}
}

// TestObserveServicesRefuseBadConfig: a service missing a part is refused.
func TestObserveServicesRefuseBadConfig(t *testing.T) {
	_, err := naive.NewService(naive.Config{})
	assert.ErrorIs(t, err, shop.ErrInvalidConfig)
	_, err = naive.NewService(naive.Config{DB: &pgxpool.Pool{}})
	assert.ErrorIs(t, err, shop.ErrInvalidConfig)
	full := scalable.Config{
		DB: &pgxpool.Pool{}, Notifier: notifyNobody, Logger: slog.New(slog.DiscardHandler),
		Tracing: noop.NewTracerProvider(), Metrics: scalable.NewMetrics(),
	}
	for _, missing := range []func(*scalable.Config){
		func(c *scalable.Config) { c.DB = nil },
		func(c *scalable.Config) { c.Notifier = nil },
		func(c *scalable.Config) { c.Logger = nil },
		func(c *scalable.Config) { c.Tracing = nil },
		func(c *scalable.Config) { c.Metrics = nil },
	} {
		cfg := full
		missing(&cfg)
		_, err := scalable.NewService(cfg)
		assert.ErrorIs(t, err, shop.ErrInvalidConfig)
	}
	_, err = scalable.NewService(full)
	assert.NoError(t, err)
}

// TestObserveProcessOrderExplainsItself: one scalable ProcessOrder is one
// trace, with a span per step and one per statement under the step that ran
// it; its log records carry that trace's id; its metrics count it.
func TestObserveProcessOrderExplainsItself(t *testing.T) {
	tp, recorder := recordingTracing(t)
	db := pgtest.ShopCloneTraced(t, shop.Small, scalable.NewQueryTracer(tp))
	var logs bytes.Buffer
	metrics := scalable.NewMetrics()
	svc, err := scalable.NewService(scalable.Config{
		DB: db, Notifier: notifyNobody, Logger: scalable.NewLogger(&logs, slog.LevelDebug),
		Tracing: tp, Metrics: metrics,
	})
	require.NoError(t, err)

	spans, err := traced(context.Background(), tp, recorder, "request", func(ctx context.Context) error {
		_, err := svc.ProcessOrder(ctx, 2, 3, 1)
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{
		"request": 1, "ProcessOrder": 1, "create order": 1, "notify": 1,
		"BEGIN": 1, "INSERT": 2, "COMMIT": 1,
	}, scalable.CountSpans(spans), "spans:\n%s", waterfall(spans))
	parents := make(map[string]string)
	names := make(map[trace.SpanID]string)
	for _, s := range spans {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	for _, s := range spans {
		parents[s.Name()] = names[s.Parent().SpanID()]
	}
	assert.Equal(t, "create order", parents["INSERT"], "the statements are the step's children")
	assert.Equal(t, "ProcessOrder", parents["notify"])

	traceID := spans[0].SpanContext().TraceID().String()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 3, "a record per step and one for the call:\n%s", logs.String())
	for _, line := range lines {
		var record map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &record))
		assert.Equal(t, traceID, record["trace_id"], "record %s", line)
	}

	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Contains(t, rec.Body.String(), `shop_requests_total{op="ProcessOrder"} 1`)
}

// TestObserveConcurrentRequestsKeepTheirTraces: 20 ProcessOrders at once,
// on a pool of fewer connections, each its own trace: every trace holds its
// own 8 spans, and every log record carries the id of its request's trace.
func TestObserveConcurrentRequestsKeepTheirTraces(t *testing.T) {
	const requests = 20
	tp, recorder := recordingTracing(t)
	db := pgtest.ShopCloneTraced(t, shop.Small, scalable.NewQueryTracer(tp))
	var logs syncbuf.Buffer // written by 20 requests at once
	// A barrier in the notifier: no call returns before all of them are
	// inside ProcessOrder at once, so that their spans and records are
	// made while the others' are, not one call after another.
	var arrived atomic.Int64
	allIn := make(chan struct{})
	barrier := notifierFunc(func(ctx context.Context, _, _ int64) error {
		if arrived.Add(1) == requests {
			close(allIn)
		}
		select {
		case <-allIn:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	svc, err := scalable.NewService(scalable.Config{
		DB: db, Notifier: barrier, Logger: scalable.NewLogger(&logs, slog.LevelDebug),
		Tracing: tp, Metrics: scalable.NewMetrics(),
	})
	require.NoError(t, err)

	// A call that fails before the barrier would hold the others there for
	// ever: it cancels them, so the test fails rather than hangs.
	calls, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, requests)
	for i := range requests {
		wg.Go(func() {
			ctx, root := tp.Tracer("bench").Start(calls, "request")
			defer root.End()
			if _, errs[i] = svc.ProcessOrder(ctx, int64(i+1), 3, 1); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "request %d", i)
	}

	spansPerTrace := make(map[string]int)
	for _, s := range recorder.Ended() {
		spansPerTrace[s.SpanContext().TraceID().String()]++
	}
	require.Len(t, spansPerTrace, requests, "a trace per request")
	for id, n := range spansPerTrace {
		assert.Equal(t, 8, n, "spans of trace %s: the request, ProcessOrder, two steps, four statements", id)
	}
	recordsPerTrace := make(map[string]int)
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var record map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &record))
		id, _ := record["trace_id"].(string)
		require.Contains(t, spansPerTrace, id, "record %s", line)
		recordsPerTrace[id]++
	}
	for id, n := range recordsPerTrace {
		assert.Equal(t, 3, n, "records of trace %s", id)
	}
}

// cardinalityUsers is how many users the cardinality test and benchmark
// observe at most.
const cardinalityUsers = 10_000

// requestMetrics is what both Metrics do.
type requestMetrics interface {
	Observe(op string, userID int64, d time.Duration, err error)
	Series() (int, error)
	Handler() http.Handler
}

// metricsImpls are the two Metrics, naive first.
var metricsImpls = []struct {
	name string
	new  func() requestMetrics
	// series is how many series the metrics hold after users users made one
	// request each, none failing.
	series func(users int) int
}{
	{"naive", func() requestMetrics { return naive.NewMetrics() }, func(users int) int {
		return users * (1 + len(naive.LatencyBuckets) + 3) // a counter and a histogram per user
	}},
	{"scalable", func() requestMetrics { return scalable.NewMetrics() }, func(int) int {
		return 1 + len(scalable.LatencyBuckets) + 3 // one counter, one histogram
	}},
}

// TestObserveMetricsCardinality: after 10,000 users made a request each, a
// user id label has made 17 series per user; the bounded metrics hold 17.
func TestObserveMetricsCardinality(t *testing.T) {
	for _, impl := range metricsImpls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			m := impl.new()
			for users := 1; users <= cardinalityUsers; users++ {
				m.Observe("ProcessOrder", int64(users), time.Millisecond, nil)
				if users == 10 || users == 100 || users == 1000 || users == cardinalityUsers {
					series, err := m.Series()
					require.NoError(t, err)
					require.Equal(t, impl.series(users), series, "series after %d users", users)
				}
			}
		})
	}
}

// TestObserveMetricsTakeAnyOperationName: Prometheus panics on a label value
// that is not UTF-8; the metrics record it under a valid one instead, on
// either side, and a scrape still works.
func TestObserveMetricsTakeAnyOperationName(t *testing.T) {
	for _, impl := range metricsImpls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			m := impl.new()
			require.NotPanics(t, func() { m.Observe("Process\xffOrder", -1, -time.Second, errors.New("refused")) })
			series, err := m.Series()
			require.NoError(t, err)
			assert.Equal(t, impl.series(1)+1, series, "one request's series, and its error")
		})
	}
}

// BenchmarkObserveMetrics measures a scrape of /metrics after users users
// made a request each: what Prometheus pays every 15 seconds, for ever.
func BenchmarkObserveMetrics(b *testing.B) {
	for _, impl := range metricsImpls {
		for _, users := range benchkit.Ladder(100, cardinalityUsers) {
			b.Run(benchkit.Name("impl", impl.name)+"/"+benchkit.Name("users", users), func(b *testing.B) {
				m := impl.new()
				for user := range users {
					m.Observe("ProcessOrder", int64(user+1), time.Millisecond, nil)
				}
				series, err := m.Series()
				if err != nil {
					b.Fatal(err)
				}
				handler := m.Handler()
				var scraped int64
				for b.Loop() {
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
					scraped += int64(rec.Body.Len())
				}
				b.ReportMetric(float64(series), "series")
				b.ReportMetric(float64(scraped)/float64(b.N), "scrape-bytes/op")
			})
		}
	}
}

// switchTracer hands pgx's events to the QueryTracer it holds, if any: one
// pool serves benchmarks that trace differently.
type switchTracer struct {
	current atomic.Pointer[scalable.QueryTracer]
}

func (s *switchTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if t := s.current.Load(); t != nil {
		return t.TraceQueryStart(ctx, conn, data)
	}
	return ctx
}

func (s *switchTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if t := s.current.Load(); t != nil {
		t.TraceQueryEnd(ctx, conn, data)
	}
}

func (s *switchTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if t := s.current.Load(); t != nil {
		return t.TraceBatchStart(ctx, conn, data)
	}
	return ctx
}

func (s *switchTracer) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	if t := s.current.Load(); t != nil {
		t.TraceBatchQuery(ctx, conn, data)
	}
}

func (s *switchTracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	if t := s.current.Load(); t != nil {
		t.TraceBatchEnd(ctx, conn, data)
	}
}

// countingExporter counts the spans it is sent and drops them: an exporter
// that costs nothing, so the benchmark measures what the process pays.
type countingExporter struct{ spans atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

// sink is a writer that keeps nothing. Unlike io.Discard, a log.Logger
// writing to it still formats each line, as it would for a file.
type sink struct{}

func (sink) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkObserveProcessOrder measures a ProcessOrder against the database:
// naive (log.Printf), then scalable with tracing off (a no-op provider),
// sampling 1% of traces, and tracing all, each logging at info level to a
// writer that keeps nothing and counting in its metrics. The copy of the shop
// commits without waiting for the disk (synchronous_commit off): that wait,
// milliseconds here, would hide what the telemetry costs.
func BenchmarkObserveProcessOrder(b *testing.B) {
	switcher := new(switchTracer)
	db := pgtest.ShopCloneTraced(b, shop.Small, switcher)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`); err != nil {
		b.Fatal(err)
	}
	db.Reset() // new connections take the setting
	impls := []struct {
		name     string
		fraction float64 // of traces sampled; -1 for a no-op provider
	}{{"naive", -1}, {"off", -1}, {"sampled1pct", 0.01}, {"always", 1}}
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			var svc orderProcessor
			exporter := new(countingExporter)
			var sdk *sdktrace.TracerProvider
			if impl.name == "naive" {
				works, err := naive.NewService(naive.Config{DB: db, Notifier: notifyNobody, Logger: log.New(sink{}, "", log.LstdFlags)})
				if err != nil {
					b.Fatal(err)
				}
				svc = works
			} else {
				var tp trace.TracerProvider = noop.NewTracerProvider()
				if impl.fraction >= 0 {
					var err error
					if sdk, err = scalable.NewTracerProvider(impl.fraction, exporter); err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() {
						if err := sdk.Shutdown(ctx); err != nil {
							b.Error(err)
						}
					})
					tp = sdk
				}
				switcher.current.Store(scalable.NewQueryTracer(tp))
				b.Cleanup(func() { switcher.current.Store(nil) })
				scales, err := scalable.NewService(scalable.Config{
					DB: db, Notifier: notifyNobody, Logger: scalable.NewLogger(sink{}, slog.LevelInfo),
					Tracing: tp, Metrics: scalable.NewMetrics(),
				})
				if err != nil {
					b.Fatal(err)
				}
				svc = scales
			}
			user := int64(0)
			for b.Loop() {
				user = user%int64(shop.Small.Users()) + 1
				if _, err := svc.ProcessOrder(ctx, user, 3, 1); err != nil {
					b.Fatal(err)
				}
			}
			if sdk != nil {
				if err := sdk.ForceFlush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(exporter.spans.Load())/float64(b.N), "spans/op")
		})
	}
}

// BenchmarkObserveLog measures one log call of a request, with three values,
// written to a writer that keeps nothing, from inside a span: log.Printf, a slog debug
// record below the logger's level, and an info record it writes as JSON with
// the trace ids.
func BenchmarkObserveLog(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("bench").Start(context.Background(), "request")
	b.Cleanup(func() { span.End() })
	printf := log.New(sink{}, "", log.LstdFlags)
	logger := scalable.NewLogger(sink{}, slog.LevelInfo)
	const userID, orderID, took = int64(42), int64(1234), 3 * time.Millisecond
	for _, impl := range []struct {
		name string
		log  func()
	}{
		{"printf", func() { printf.Printf("order %d of user %d done in %v", orderID, userID, took) }},
		{"slog-debug-disabled", func() {
			logger.DebugContext(ctx, "process order", "user_id", userID, "order_id", orderID, "duration", took)
		}},
		{"slog-info-enabled", func() {
			logger.InfoContext(ctx, "process order", "user_id", userID, "order_id", orderID, "duration", took)
		}},
	} {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				impl.log()
			}
		})
	}
}

// BenchmarkObserveSpan measures one span of a request, started and ended
// with three attributes under the request's root span: with a no-op tracer
// provider, with the SDK sampling 1% of traces (a child follows its root's
// decision), and with it recording every span and exporting them in batches.
// A root is started every 100 spans, so that sampling sees many traces. A
// ProcessOrder makes 7 spans.
func BenchmarkObserveSpan(b *testing.B) {
	for _, impl := range []struct {
		name     string
		fraction float64 // -1 for a no-op provider
	}{{"off", -1}, {"sampled1pct", 0.01}, {"always", 1}} {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			var tp trace.TracerProvider = noop.NewTracerProvider()
			if impl.fraction >= 0 {
				sdk, err := scalable.NewTracerProvider(impl.fraction, new(countingExporter))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
				tp = sdk
			}
			tracer := tp.Tracer("bench")
			ctx, root := tracer.Start(context.Background(), "request")
			spans := 0
			for b.Loop() {
				if spans++; spans%100 == 0 {
					root.End()
					ctx, root = tracer.Start(context.Background(), "request")
				}
				_, span := tracer.Start(ctx, "step", trace.WithAttributes(
					attribute.Int64("user.id", 42), attribute.Int64("order.id", 1234), attribute.String("db.system.name", "postgresql")))
				span.End()
			}
			root.End()
		})
	}
}
