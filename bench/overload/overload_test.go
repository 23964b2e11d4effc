package overload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/load"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/rttproxy"
	naive "works-vs-scales/naive/overload"
	scalable "works-vs-scales/scalable/overload"
	scalableretry "works-vs-scales/scalable/retries"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Lesson 16: overload. The naive server accepts every request and queues
// them all on its pool; the scalable one admits what it can serve and
// refuses the rest at once. The tests hold the database still with a lock
// (the queries wait on it) and count what waits where.

// poolWatch counts a pool's callers: those that asked for a connection and
// have not given it back (waiting for one or holding one), the most of them
// at once, and those still waiting for one.
type poolWatch struct {
	inFlight, most, waiting atomic.Int64
}

func (w *poolWatch) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	n := w.inFlight.Add(1)
	for m := w.most.Load(); n > m && !w.most.CompareAndSwap(m, n); m = w.most.Load() {
	}
	w.waiting.Add(1)
	return ctx
}

func (w *poolWatch) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	w.waiting.Add(-1)
	if data.Err != nil {
		w.inFlight.Add(-1)
	}
}

func (w *poolWatch) TraceRelease(*pgxpool.Pool, pgxpool.TraceReleaseData) { w.inFlight.Add(-1) }

func (w *poolWatch) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (w *poolWatch) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// watchedPool returns a pool of size connections on db's database, watched,
// closed when the test ends.
func watchedPool(tb testing.TB, db *pgxpool.Pool, size int32) (*pgxpool.Pool, *poolWatch) {
	tb.Helper()
	watch := &poolWatch{}
	cfg := db.Config()
	cfg.MaxConns = size
	cfg.ConnConfig.Tracer = watch
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(tb, err)
	tb.Cleanup(pool.Close)
	return pool, watch
}

// eventually waits until cond holds, failing the test after 30 s.
func eventually(t testing.TB, cond func() bool, msg string, args ...any) {
	t.Helper()
	if !assert.Eventually(t, cond, 30*time.Second, time.Millisecond, append([]any{msg}, args...)...) {
		t.FailNow()
	}
}

// serve starts h on a loopback port, closed when the test ends.
func serve(tb testing.TB, h http.Handler) string {
	tb.Helper()
	srv := httptest.NewUnstartedServer(h)
	tb.Cleanup(srv.Close)
	srv.Start()
	return srv.URL
}

// answer is an HTTP response, read.
type answer struct {
	status     int
	retryAfter string
	body       string
	err        error
}

func getURL(ctx context.Context, url string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return answer{err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(body), err}
}

func TestOverloadHandlersAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	scales, err := scalable.NewHandler(db, scalable.LimitsFor(db))
	require.NoError(t, err)
	naiveURL, scalableURL := serve(t, naive.NewHandler(db)), serve(t, scales)
	var heavy int64
	require.NoError(t, db.QueryRow(t.Context(), `SELECT user_id FROM orders GROUP BY user_id ORDER BY count(*) DESC LIMIT 1`).Scan(&heavy))
	var noOrders int64
	require.NoError(t, db.QueryRow(t.Context(), `SELECT min(id) FROM users u WHERE NOT EXISTS (SELECT FROM orders WHERE user_id = u.id)`).Scan(&noOrders))
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/users/1/orders", http.StatusOK},
		{fmt.Sprintf("/users/%d/orders", heavy), http.StatusOK},
		{fmt.Sprintf("/users/%d/orders", noOrders), http.StatusOK},
		{"/users/0/orders", http.StatusNotFound},
		{"/users/-7/orders", http.StatusNotFound},
		{fmt.Sprintf("/users/%d/orders", int64(1)<<62), http.StatusNotFound},
		{"/users/99999999999999999999/orders", http.StatusBadRequest},
		{"/users/abc/orders", http.StatusBadRequest},
		{"/users/1/nothing", http.StatusNotFound},
	} {
		want, got := getURL(t.Context(), naiveURL+c.path), getURL(t.Context(), scalableURL+c.path)
		require.NoError(t, want.err, c.path)
		require.NoError(t, got.err, c.path)
		assert.Equal(t, c.status, want.status, "naive %s: %s", c.path, want.body)
		assert.Equal(t, want, got, c.path)
		if c.status == http.StatusOK {
			var orders []naive.Order
			require.NoError(t, json.Unmarshal([]byte(want.body), &orders), c.path)
			assert.LessOrEqual(t, len(orders), 10, c.path)
			if c.path == fmt.Sprintf("/users/%d/orders", heavy) {
				assert.Len(t, orders, 10, "the heaviest user has ten orders or more")
			}
		}
	}
}

func TestAdmitRefusesInvalidLimits(t *testing.T) {
	ok := http.NotFoundHandler()
	for _, limits := range []scalable.Limits{
		{},
		{Concurrency: -1},
		{Concurrency: 1, Queue: -1},
		{Concurrency: 1, Queue: 1}, // a queue with no timeout
		{Concurrency: 1, QueueTimeout: -time.Second},
		{Concurrency: 1, PerClient: -1, Burst: 1},
		{Concurrency: 1, PerClient: 10},
		{Concurrency: 1, MaxClients: -1},
		{Concurrency: 1, PerClientAtOnce: -1},
	} {
		_, err := scalable.Admit(ok, limits)
		assert.ErrorIs(t, err, shop.ErrInvalidConfig, "%+v", limits)
	}
	_, err := scalable.Admit(nil, scalable.Limits{Concurrency: 1})
	assert.ErrorIs(t, err, shop.ErrInvalidConfig, "no handler: a panic at the first request otherwise")
	_, err = scalable.NewHandler(nil, scalable.Limits{Concurrency: 1})
	assert.ErrorIs(t, err, shop.ErrInvalidConfig, "no database: a panic at the first request otherwise")
	for _, a := range []*scalable.Admission{nil, {}} {
		_, err = a.Admit(ok)
		assert.ErrorIs(t, err, shop.ErrInvalidConfig, "an Admission not made by NewAdmission (%v): a panic at the first request otherwise", a)
	}
}

// TestSummariesRefuseNoDatabase: no database is an error on both sides, not
// a panic (the naive side's, in a goroutine of its own, ended the process).
func TestSummariesRefuseNoDatabase(t *testing.T) {
	for name, summaries := range map[string]func(context.Context, *pgxpool.Pool, []int64) (any, error){
		"naive": func(ctx context.Context, db *pgxpool.Pool, ids []int64) (any, error) {
			return naive.Summaries(ctx, db, ids)
		},
		"scalable": func(ctx context.Context, db *pgxpool.Pool, ids []int64) (any, error) {
			return scalable.Summaries(ctx, db, ids)
		},
	} {
		_, err := summaries(context.Background(), nil, []int64{1, 2})
		assert.ErrorIs(t, err, shop.ErrInvalidConfig, name)
	}
}

const (
	overloadCapacity = 3 // connections, and requests served at once
	overloadExtra    = 5 // requests beyond them
)

// overloadAtCapacity serves handler, made on a pool of overloadCapacity
// connections to a copy of the shop whose orders are locked, sends it
// overloadCapacity requests and waits until each holds a connection, waiting
// on the lock; then sends overloadExtra more, and calls during with their
// answers channel and the pool's watch. When during returns, the lock is
// released, and overloadAtCapacity returns the first requests' answers.
func overloadAtCapacity(t *testing.T, handler func(db *pgxpool.Pool) http.Handler, during func(extra <-chan answer, watch *poolWatch)) []answer {
	t.Helper()
	db := pgtest.ShopClone(t, shop.Small)
	pool, watch := watchedPool(t, db, overloadCapacity)
	url := serve(t, handler(pool)) + "/users/1/orders"
	var requests sync.WaitGroup
	t.Cleanup(requests.Wait) // registered before the lock: runs after its release
	release := benchkit.LockTable(t, db, "orders", "ACCESS EXCLUSIVE")
	first := make([]answer, overloadCapacity)
	for i := range overloadCapacity {
		requests.Go(func() { first[i] = getURL(context.Background(), url) })
	}
	benchkit.WaitForLockWaiters(t, db, overloadCapacity)
	extra := make(chan answer, overloadExtra)
	for range overloadExtra {
		requests.Go(func() { extra <- getURL(context.Background(), url) })
	}
	during(extra, watch)
	release()
	requests.Wait()
	return first
}

func TestNaiveServerQueuesEveryRequest(t *testing.T) {
	first := overloadAtCapacity(t, func(db *pgxpool.Pool) http.Handler { return naive.NewHandler(db) },
		func(extra <-chan answer, watch *poolWatch) {
			eventually(t, func() bool { return watch.waiting.Load() == overloadExtra },
				"the %d requests beyond capacity wait for a connection", overloadExtra)
			assert.Empty(t, extra, "no request is answered while the first ones hold every connection")
			assert.Equal(t, int64(overloadCapacity+overloadExtra), watch.inFlight.Load())
		})
	for _, a := range first {
		assert.Equal(t, http.StatusOK, a.status)
	}
}

func TestAdmitRefusesWhatItCannotServeAtOnce(t *testing.T) {
	limits := scalable.Limits{Concurrency: overloadCapacity, RetryAfter: 2 * time.Second}
	first := overloadAtCapacity(t, func(db *pgxpool.Pool) http.Handler {
		h, err := scalable.NewHandler(db, limits)
		require.NoError(t, err)
		return h
	}, func(extra <-chan answer, watch *poolWatch) {
		for range overloadExtra {
			a := <-extra // while the first requests still wait on the lock
			require.NoError(t, a.err)
			assert.Equal(t, http.StatusServiceUnavailable, a.status, a.body)
			assert.Equal(t, "2", a.retryAfter)
		}
		assert.Equal(t, int64(overloadCapacity), watch.most.Load(), "no more callers of the pool than connections")
		assert.Zero(t, watch.waiting.Load())
	})
	for _, a := range first {
		assert.Equal(t, http.StatusOK, a.status, "the requests admitted are served")
	}
}

// blockingHandler answers 200 once released; entered says a request came in.
func blockingHandler() (h http.Handler, entered <-chan struct{}, release func()) {
	in := make(chan struct{}, 100)
	done := make(chan struct{})
	var once sync.Once
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		<-done
	})
	return h, in, func() { once.Do(func() { close(done) }) }
}

func TestAdmitQueueWaitsThenRefusesAtItsTimeout(t *testing.T) {
	h, entered, release := blockingHandler()
	admitted, err := scalable.Admit(h, scalable.Limits{Concurrency: 1, Queue: 1, QueueTimeout: 20 * time.Millisecond})
	require.NoError(t, err)
	url := serve(t, admitted)
	t.Cleanup(release) // registered after the server: runs before it closes
	firstDone := make(chan answer, 1)
	go func() { firstDone <- getURL(context.Background(), url) }()
	<-entered
	start := time.Now()
	queued := getURL(t.Context(), url)
	assert.Equal(t, http.StatusServiceUnavailable, queued.status)
	assert.Equal(t, "1", queued.retryAfter, "Retry-After is whole seconds, at least 1")
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "it waited in the queue first")
	release()
	assert.Equal(t, http.StatusOK, (<-firstDone).status)
	assert.Equal(t, http.StatusOK, getURL(t.Context(), url).status, "a turn is free again")
}

func TestAdmitLimitsEachClient(t *testing.T) {
	admitted, err := scalable.Admit(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), scalable.Limits{
		Concurrency: 10,
		PerClient:   rate.Every(1000 * time.Second), // after the burst, one request per 1000 s
		Burst:       2,
		Client:      func(r *http.Request) string { return r.Header.Get("X-Client") },
		MaxClients:  2,
	})
	require.NoError(t, err)
	url := serve(t, admitted)
	as := func(client string) answer {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		require.NoError(t, err)
		req.Header.Set("X-Client", client)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	}
	assert.Equal(t, http.StatusOK, as("a").status)
	assert.Equal(t, http.StatusOK, as("a").status)
	third := as("a")
	assert.Equal(t, http.StatusTooManyRequests, third.status)
	after, err := strconv.Atoi(third.retryAfter)
	require.NoError(t, err)
	assert.InDelta(t, 1000, after, 1, "Retry-After says when the next request passes")
	assert.Equal(t, http.StatusOK, as("b").status, "another client has its own rate")
	assert.Equal(t, http.StatusOK, as("c").status, "a third client: one is forgotten, the memory stays bounded")
}

// TestClientHonoursRetryAfter: lesson 9's retry.Do, around a request to a
// server at capacity, waits at least as long as the refusal's Retry-After
// says. The refusal asks for an hour and the caller has a minute left, so a
// client that honours it gives up at once, after one attempt; one that took
// its own 1 ms backoff instead would try again and be served, the server
// having room by then. No clock is read: the verdict is the attempts made.
func TestClientHonoursRetryAfter(t *testing.T) {
	h, entered, release := blockingHandler()
	admitted, err := scalable.Admit(h, scalable.Limits{Concurrency: 1, RetryAfter: time.Hour})
	require.NoError(t, err)
	url := serve(t, admitted)
	t.Cleanup(release) // registered after the server: runs before it closes
	go getURL(context.Background(), url)
	<-entered
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // less than Retry-After, more than any attempt
	defer cancel()
	attempts := 0
	policy := scalableretry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxElapsed: 2 * time.Hour}
	err = scalableretry.Do(ctx, policy, func(ctx context.Context) error {
		attempts++
		a := getURL(ctx, url)
		if a.err != nil {
			return a.err
		}
		if a.status == http.StatusOK {
			return nil
		}
		release() // the server has room by the next attempt
		seconds, err := strconv.Atoi(a.retryAfter)
		if err != nil {
			return fmt.Errorf("status %d, Retry-After %q: %w", a.status, a.retryAfter, err)
		}
		return &gateway.Error{StatusCode: a.status, RetryAfter: time.Duration(seconds) * time.Second}
	})
	var refused *gateway.Error
	require.ErrorAs(t, err, &refused, "the client gave up on the refusal")
	assert.Equal(t, http.StatusServiceUnavailable, refused.StatusCode)
	assert.Equal(t, time.Hour, refused.RetryAfter, "Retry-After: 3600")
	assert.Equal(t, 1, attempts, "no second attempt before Retry-After, none after the caller's deadline")
	assert.NoError(t, ctx.Err(), "it gave up at once, without waiting for its deadline")
}

// summaries is lesson 16's fan-out, either version.
type summaries func(ctx context.Context, db *pgxpool.Pool, userIDs []int64) ([]naive.Summary, error)

func scalableSummaries(ctx context.Context, db *pgxpool.Pool, userIDs []int64) ([]naive.Summary, error) {
	got, err := scalable.Summaries(ctx, db, userIDs)
	out := make([]naive.Summary, len(got))
	for i, s := range got {
		out[i] = naive.Summary(s)
	}
	return out, err
}

func TestSummariesAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	users := []int64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, -1, 1 << 62, 1}
	want, err := naive.Summaries(t.Context(), db, users)
	require.NoError(t, err)
	got, err := scalableSummaries(t.Context(), db, users)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, int64(0), want[10].Orders, "an unknown user has no orders")
	for _, fn := range []summaries{naive.Summaries, scalableSummaries} {
		none, err := fn(t.Context(), db, nil)
		assert.NoError(t, err)
		assert.Empty(t, none)
		_, err = fn(t.Context(), db, make([]int64, naive.MaxSummaryUsers+1))
		assert.ErrorIs(t, err, shop.ErrInvalidPage)
	}
}

const fanOut = 12 // users of a fan-out, four times the pool

func TestNaiveFanOutQueuesEveryGoroutineOnThePool(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	pool, watch := watchedPool(t, db, overloadCapacity)
	var call sync.WaitGroup
	t.Cleanup(call.Wait) // registered before the lock: runs after its release
	release := benchkit.LockTable(t, db, "orders", "ACCESS EXCLUSIVE")
	call.Go(func() { naive.Summaries(context.Background(), pool, make([]int64, fanOut)) })
	eventually(t, func() bool { return watch.inFlight.Load() == fanOut }, "a goroutine per user asks the pool")
	benchkit.WaitForLockWaiters(t, db, overloadCapacity)
	assert.Equal(t, int64(fanOut-overloadCapacity), watch.waiting.Load(), "all but three wait for a connection")
	release()
}

func TestScalableFanOutRunsNoMoreThanThePool(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	pool, watch := watchedPool(t, db, overloadCapacity)
	var call sync.WaitGroup
	t.Cleanup(call.Wait)
	release := benchkit.LockTable(t, db, "orders", "ACCESS EXCLUSIVE")
	var err error
	call.Go(func() { _, err = scalable.Summaries(context.Background(), pool, make([]int64, fanOut)) })
	benchkit.WaitForLockWaiters(t, db, overloadCapacity)
	assert.Zero(t, watch.waiting.Load(), "no goroutine waits for a connection")
	release()
	call.Wait()
	require.NoError(t, err)
	assert.Equal(t, int64(overloadCapacity), watch.most.Load(), "at most a pool's worth at once")
}

// leakedBy returns what goleak finds left running by fn's call, beyond what
// ran before it, once fn has returned.
func leakedBy(fn func()) error {
	before := goleak.IgnoreCurrent()
	fn()
	return goleak.Find(before)
}

// TestNaiveFanOutLeaksOnAnAbandonedRequest: the client gave up (its context
// is cancelled), the first query fails, Summaries returns, and every other
// goroutine waits for ever to send its answer. The leak is real: three
// goroutines stay blocked for the rest of this test binary.
func TestNaiveFanOutLeaksOnAnAbandonedRequest(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	require.NoError(t, db.Ping(t.Context()), "a connection exists before the snapshot")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	leak := leakedBy(func() {
		_, err := naive.Summaries(ctx, db, []int64{1, 2, 3, 4})
		require.ErrorIs(t, err, context.Canceled)
	})
	require.Error(t, leak, "goleak finds the goroutines left behind")
	assert.Contains(t, leak.Error(), "naive/overload.Summaries.func1")
}

func TestScalableFanOutLeavesNothingBehind(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	require.NoError(t, db.Ping(t.Context()))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.NoError(t, leakedBy(func() {
		_, err := scalable.Summaries(ctx, db, []int64{1, 2, 3, 4})
		require.ErrorIs(t, err, context.Canceled)
	}))
}

// The load on lesson 16's servers. Each request holds one of overloadPool
// connections for a round trip of overloadRTT, added by the harness's latency
// proxy: a capacity of about overloadPool/overloadRTT requests a second
// (about 200), set by waiting rather than by the CPU, so that it is about
// the same on any machine, and the load generator on the same CPUs does not
// move it.
const (
	overloadPool     = 2
	overloadRTT      = 10 * time.Millisecond
	overloadTimeout  = time.Second            // the client gives up
	overloadDeadline = 500 * time.Millisecond // a user waits this long, at most
)

// overloadRates are the offered loads, in requests a second: up to three
// times the capacity. Only the lowest, briefly, with -short.
func overloadRates() ([]int, time.Duration) {
	if testing.Short() {
		return []int{50}, 200 * time.Millisecond
	}
	return []int{50, 100, 200, 400, 600}, 3 * time.Second
}

// proxiedPool returns a pool of size connections to db's database, every
// round trip rtt longer, through a proxy of its own; both closed when the
// benchmark ends.
func proxiedPool(tb testing.TB, db *pgxpool.Pool, size int32, rtt time.Duration) *pgxpool.Pool {
	tb.Helper()
	cfg := db.Config()
	network, target := "tcp", net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	if strings.HasPrefix(cfg.ConnConfig.Host, "/") {
		network, target = "unix", fmt.Sprintf("%s/.s.PGSQL.%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	}
	var proxy *rttproxy.Proxy
	tb.Cleanup(func() {
		if proxy != nil {
			proxy.Close()
		}
	})
	proxy, err := rttproxy.Start(network, target, rtt)
	require.NoError(tb, err)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = "127.0.0.1", uint16(proxy.Addr().Port), nil
	cfg.MaxConns = size
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(tb, err)
	tb.Cleanup(pool.Close) // runs before the proxy's close
	// Open every connection now: connecting through the proxy takes a few
	// round trips, which the first requests measured would otherwise pay.
	conns := make([]*pgxpool.Conn, size)
	for i := range conns {
		conns[i], err = pool.Acquire(context.Background())
		require.NoError(tb, err)
	}
	for _, c := range conns {
		c.Release()
	}
	return pool
}

// BenchmarkOverload offers each server a constant rate of requests for a
// user's orders, open loop, and reports what the users saw: goodput (the
// answers within overloadDeadline, a second), the latency quantiles, errors
// and timeouts.
func BenchmarkOverload(b *testing.B) {
	db := pgtest.Shop(b, shop.Small)
	var users uint64
	require.NoError(b, db.QueryRow(context.Background(), `SELECT max(id) FROM users`).Scan(&users))
	impls := []struct {
		name    string
		handler func(db *pgxpool.Pool) (http.Handler, error)
	}{
		{"naive", func(db *pgxpool.Pool) (http.Handler, error) { return naive.NewHandler(db), nil }},
		{"scalable", func(db *pgxpool.Pool) (http.Handler, error) {
			return scalable.NewHandler(db, scalable.LimitsFor(db))
		}},
	}
	rates, step := overloadRates()
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			// A pool and a proxy of its own: the same network and size for
			// each server, and nothing the last one left queued on them.
			pool := proxiedPool(b, db, overloadPool, overloadRTT)
			handler, err := impl.handler(pool)
			require.NoError(b, err)
			url := serve(b, handler)
			cfg := load.Config{
				// The users in turn, spread over the shop by a stride
				// prime to their number: the same requests every run.
				Targets: func(seq uint64) load.Target {
					return load.Target{URL: fmt.Sprintf("%s/users/%d/orders", url, 1+(seq*7919)%users)}
				},
				Duration: 250 * time.Millisecond, // the warm-up's
				Timeout:  overloadTimeout,
				Deadline: overloadDeadline,
			}
			// Warm up: the client's connections, and the pool's
			// statements, before any step is measured.
			_, err = load.Open(context.Background(), cfg, 20)
			require.NoError(b, err)
			cfg.Duration = step
			for _, r := range rates {
				b.Run(benchkit.Name("rate", r), func(b *testing.B) {
					var result load.Step
					for b.Loop() {
						steps, err := load.Open(context.Background(), cfg, r)
						require.NoError(b, err)
						result = steps[0]
					}
					result.ReportTo(b)
				})
			}
		})
	}
}

// Coordinated omission: a load that waits for its answers stops asking when
// the service stalls, so it records one slow request a worker where users
// arriving at their own pace would have queued a stall's worth.

// pausingService answers each request after work, except during a pause: a
// stop-the-world pause (a collector's, a lock held on a hot table) holds
// every request until it ends. arrived counts the requests it has seen;
// reached, when not nil, is closed when the at-th arrives.
type pausingService struct {
	world   sync.RWMutex
	work    time.Duration
	arrived atomic.Int64
	at      int64
	reached chan struct{}
}

func (s *pausingService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := s.arrived.Add(1); n == s.at && s.reached != nil {
		close(s.reached)
	}
	s.world.RLock()
	defer s.world.RUnlock()
	if s.work > 0 {
		time.Sleep(s.work) // the service's work: the benchmark's timing, not a test's
	}
}

// pause stops the world until resume is called, which may be called more
// than once. The test ends any pause it left running, before its server
// waits for the requests held in it.
func (s *pausingService) pause(tb testing.TB) (resume func()) {
	s.world.Lock()
	resume = sync.OnceFunc(s.world.Unlock)
	tb.Cleanup(resume)
	return resume
}

// omissionWorkers is the closed loop's workers, the benchmark's and the
// tests'.
const omissionWorkers = 2

func TestOverloadClosedLoopSendsNoMoreThanItsWorkersDuringAStall(t *testing.T) {
	svc := &pausingService{}
	url := serve(t, svc)
	cfg := load.Config{
		Targets:  func(uint64) load.Target { return load.Target{URL: url} },
		Duration: 100 * time.Millisecond,
	}
	// The stall outlasts the step: every worker's first request waits in
	// it, and no worker can send another.
	resume := svc.pause(t)
	stall := 3 * cfg.Duration
	var during atomic.Int64
	timer := time.AfterFunc(stall, func() { during.Store(svc.arrived.Load()); resume() })
	t.Cleanup(func() { timer.Stop() })
	s, err := load.Closed(t.Context(), cfg, omissionWorkers)
	require.NoError(t, err)
	assert.LessOrEqual(t, during.Load(), int64(omissionWorkers),
		"requests sent by %d workers during a %v stall", omissionWorkers, stall)
	assert.Equal(t, s.OK, s.Requests, "%+v", s)
	// What the closed loop reports of the stall: one slow request a
	// worker, however long it lasted (and one more, sent on the step's
	// last tick once the stall ends).
	assert.LessOrEqual(t, s.Requests, omissionWorkers+1, "%+v", s)
}

func TestOverloadOpenLoopKeepsSendingDuringAStall(t *testing.T) {
	const want = 5 * omissionWorkers
	svc := &pausingService{at: want, reached: make(chan struct{})}
	url := serve(t, svc)
	cfg := load.Config{
		Targets:  func(uint64) load.Target { return load.Target{URL: url} },
		Duration: 100 * time.Millisecond,
	}
	const rate = 200 // 20 requests in the step
	resume := svc.pause(t)
	done := make(chan struct{})
	var steps []load.Step
	var err error
	go func() {
		defer close(done)
		steps, err = load.Open(t.Context(), cfg, rate)
	}()
	// Hold the stall until the open loop has sent several times as many
	// requests as the closed loop's workers, none of them answered: a
	// closed loop never gets there.
	select {
	case <-svc.reached:
	case <-done:
		t.Fatalf("the open loop ended after %d requests, all held in a stall, want %d", svc.arrived.Load(), want)
	}
	resume()
	<-done
	require.NoError(t, err)
	require.Len(t, steps, 1)
	assert.GreaterOrEqual(t, steps[0].Requests, want, "%+v", steps[0])
	assert.Equal(t, steps[0].OK, steps[0].Requests, "%+v", steps[0])
}

// BenchmarkCoordinatedOmission measures one service twice at the same
// throughput: a service that takes 5 ms a request and stops the world for
// 200 ms every second, loaded by a closed loop of omissionWorkers workers,
// then by an open loop at the rate such a closed loop reaches, measured just
// before it in the same run: 3 s each (6 s for open), 1 s with -short.
func BenchmarkCoordinatedOmission(b *testing.B) {
	const (
		work  = 5 * time.Millisecond
		every = time.Second
		stall = 200 * time.Millisecond
	)
	length := 3 * time.Second // three stalls a run
	if testing.Short() {
		length = time.Second
	}
	svc := &pausingService{work: work}
	url := serve(b, svc)
	cfg := load.Config{
		Targets:  func(uint64) load.Target { return load.Target{URL: url} },
		Duration: length,
	}
	// stalls stops the world for stall in the middle of every period of
	// the run's length, and returns when it has.
	stalls := func() {
		start := time.Now()
		for i := range int(length / every) {
			time.Sleep(time.Until(start.Add(time.Duration(i)*every + (every-stall)/2)))
			resume := svc.pause(b)
			time.Sleep(stall)
			resume()
		}
	}
	// run runs one step of load with the stalls, and returns it.
	run := func(step func() (load.Step, error)) load.Step {
		done := make(chan struct{})
		go func() { defer close(done); stalls() }()
		s, err := step()
		<-done
		require.NoError(b, err)
		return s
	}
	// Warm up the client's connections.
	_, err := load.Closed(context.Background(), load.Config{Targets: cfg.Targets, Duration: 100 * time.Millisecond}, omissionWorkers)
	require.NoError(b, err)

	closed := func() (load.Step, error) { return load.Closed(context.Background(), cfg, omissionWorkers) }
	b.Run("impl=closed", func(b *testing.B) {
		var result load.Step
		for b.Loop() {
			result = run(closed)
		}
		result.ReportTo(b)
	})
	b.Run("impl=open", func(b *testing.B) {
		// The same throughput: the rate a closed loop reaches here and now,
		// measured first in this run (so impl=open stands alone, in a
		// process of its own or after any other run).
		rate := max(1, int(run(closed).Rate+0.5))
		var result load.Step
		for b.Loop() {
			result = run(func() (load.Step, error) {
				steps, err := load.Open(context.Background(), cfg, rate)
				if err != nil {
					return load.Step{}, err
				}
				return steps[0], nil
			})
		}
		result.ReportTo(b)
	})
}

// TestOrdersHandlerIsTheSameOnBothSides: the lesson changes what stands in
// front of the handler (admission, a limit, shedding), not the handler, so
// naive/overload/orders.go and scalable/overload/orders.go are one file,
// kept identical: diff -r naive/overload scalable/overload then shows the
// lesson and nothing else.
func TestOrdersHandlerIsTheSameOnBothSides(t *testing.T) {
	works, err := os.ReadFile("../../naive/overload/orders.go")
	require.NoError(t, err)
	scales, err := os.ReadFile("../../scalable/overload/orders.go")
	require.NoError(t, err)
	require.Equal(t, string(works), string(scales), "change both, or neither")
}

// TestOrdersHandlerWithoutADatabaseAnswers500: a handler wired without a
// database answers each request 500, saying so, and does not panic.
func TestOrdersHandlerWithoutADatabaseAnswers500(t *testing.T) {
	for name, handler := range map[string]http.Handler{"naive": naive.Orders(nil), "scalable": scalable.Orders(nil)} {
		mux := http.NewServeMux()
		mux.Handle("GET /users/{id}/orders", handler)
		got := getURL(context.Background(), serve(t, mux)+"/users/1/orders")
		require.NoError(t, got.err, name)
		assert.Equal(t, http.StatusInternalServerError, got.status, name)
		assert.Contains(t, got.body, "no database", name)
	}
}
