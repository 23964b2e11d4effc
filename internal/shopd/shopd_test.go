package shopd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	bulkhead "works-vs-scales/scalable/bulkheads"
	observe "works-vs-scales/scalable/observability"
	"works-vs-scales/scalable/overload"
	"works-vs-scales/scalable/pagination"
	"works-vs-scales/scalable/validation"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

func TestNewRefusesWhatCannotWork(t *testing.T) {
	// Nothing connects: each is refused before a pool is opened.
	db, err := pgxpool.ParseConfig("postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	gw := &gateway.Client{URL: "http://127.0.0.1:1"}
	key := []byte("a key of thirty-two bytes, ok...")
	for _, c := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"no database", Config{Impl: Scalable, Gateway: gw, CursorKey: key}, shop.ErrInvalidConfig},
		{"no gateway", Config{Impl: Naive, DB: db, CursorKey: key}, shop.ErrInvalidConfig},
		{"unknown wiring", Config{Impl: "fast", DB: db, Gateway: gw, CursorKey: key}, ErrUnknownImpl},
		{"empty wiring", Config{DB: db, Gateway: gw, CursorKey: key}, ErrUnknownImpl},
		{"no cursor key", Config{Impl: Scalable, DB: db, Gateway: gw}, pagination.ErrWeakCursorKey},
		{"short cursor key", Config{Impl: Scalable, DB: db, Gateway: gw, CursorKey: []byte("short")}, pagination.ErrWeakCursorKey},
		{"page wiring, no cursor key", Config{Impl: Page, DB: db, Gateway: gw}, pagination.ErrWeakCursorKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			svc, err := New(context.Background(), c.cfg)
			assert.Nil(t, svc)
			assert.ErrorIs(t, err, c.want)
			assert.ErrorIs(t, err, shop.ErrInvalidConfig)
		})
	}
}

func TestCentsText(t *testing.T) {
	for cents, want := range map[int64]string{
		0: "0.00", 5: "0.05", 1250: "12.50", -5: "-0.05", -1250: "-12.50",
		math.MaxInt64: "92233720368547758.07", math.MinInt64: "-92233720368547758.08",
	} {
		assert.Equal(t, want, centsText(cents), "%d cents", cents)
	}
}

func TestStatusMapsTheLessonsErrors(t *testing.T) {
	_, invalid := validation.ParsePayment(shop.PaymentRequest{UserID: "1", Amount: "-1", Currency: "XXX"})
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("id: %w", errBadID), http.StatusBadRequest, CodeInvalidID},
		{fmt.Errorf("page: %w", pagination.ErrInvalidCursor), http.StatusBadRequest, CodeInvalidPage},
		{invalid, http.StatusBadRequest, CodeInvalidPayment},
		{fmt.Errorf("pay: %w", shop.ErrKeyReused), http.StatusUnprocessableEntity, CodeKeyReused},
		{checkPaymentText("k\xff", "r"), http.StatusBadRequest, CodeInvalidKey},
		{checkPaymentText("k", "a\x00b"), http.StatusBadRequest, CodeInvalidPayment},
		{fmt.Errorf("pay: %w", shop.ErrInProgress), http.StatusConflict, CodeInProgress},
		{fmt.Errorf("orders: %w", shop.ErrUserNotFound), http.StatusNotFound, CodeUserNotFound},
		{fmt.Errorf("orders: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, CodeDeadline},
		{&http.MaxBytesError{Limit: MaxBodyBytes}, http.StatusRequestEntityTooLarge, CodeBodyTooLarge},
		{errors.New("connection reset by peer"), http.StatusInternalServerError, CodeInternal},
		// Outages: the database or the gateway down, restarting, out of reach.
		{fmt.Errorf("orders: %w", &pgconn.PgError{Code: "57P01"}), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("orders: %w", &pgconn.PgError{Code: "57P03"}), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("orders: %w", &pgconn.PgError{Code: "08006"}), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("orders: %w", &pgconn.PgError{Code: "53300"}), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("orders: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("orders: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("orders: %w", io.ErrUnexpectedEOF), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("orders: %w", pgconn.ErrConnClosed), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("pay: 3 tries: %w", &gateway.Error{StatusCode: http.StatusServiceUnavailable}), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("acquire a connection: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, CodeDeadline},
		// Not outages: the same request fails the same way again.
		{fmt.Errorf("pay: %w", &pgconn.PgError{Code: "23505"}), http.StatusInternalServerError, CodeInternal},
		{fmt.Errorf("pay: %w", &gateway.Error{StatusCode: http.StatusBadRequest}), http.StatusInternalServerError, CodeInternal},
		// Declined, by the scalable wiring's payments (shop.ErrDeclined), or
		// before under the same key: nothing charged.
		{fmt.Errorf("pay: %w: %w", shop.ErrDeclined, &gateway.Error{StatusCode: http.StatusPaymentRequired}), http.StatusPaymentRequired, CodePaymentFailed},
		{fmt.Errorf("payment 7: %w", errPaymentFailed), http.StatusPaymentRequired, CodePaymentFailed},
		{fmt.Errorf("payment: %w", errMediaType), http.StatusUnsupportedMediaType, CodeMediaType},
		{fmt.Errorf("pay: %w", context.Canceled), http.StatusInternalServerError, CodeInternal},
	} {
		status, detail := status(c.err)
		assert.Equal(t, c.status, status, "%v", c.err)
		assert.Equal(t, c.code, detail.Code, "%v", c.err)
	}
	_, detail := status(invalid)
	assert.ElementsMatch(t, []string{"amount_cents", "currency"}, []string{detail.Fields[0].Field, detail.Fields[1].Field}, "every wrong field, named as the JSON names it")
	_, detail = status(errors.New("password=hunter2"))
	assert.Equal(t, "internal error", detail.Message, "an internal error says nothing of the inside")
}

func TestWriteErrorSaysWhenToComeBack(t *testing.T) {
	for _, c := range []struct {
		err        error
		status     int
		retryAfter string
	}{
		{fmt.Errorf("orders: %w", &pgconn.PgError{Code: "57P01"}), http.StatusServiceUnavailable, "1"},
		{fmt.Errorf("orders: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "1"},
		{fmt.Errorf("pay: %w", shop.ErrInProgress), http.StatusConflict, "1"},
		{fmt.Errorf("pay: %w", shop.ErrKeyReused), http.StatusUnprocessableEntity, ""},
		{errors.New("a bug"), http.StatusInternalServerError, ""},
	} {
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest(http.MethodGet, "/users/1/orders", nil), c.err)
		assert.Equal(t, c.status, rec.Code, "%v", c.err)
		assert.Equal(t, c.retryAfter, rec.Header().Get("Retry-After"), "%v", c.err)
	}
}

func TestClientLimits(t *testing.T) {
	def, err := clientLimits(Config{})
	require.NoError(t, err)
	assert.Equal(t, rate.Limit(DefaultClientRate), def.rate, "on by default")
	assert.Equal(t, DefaultClientBurst, def.burst)
	assert.Nil(t, def.name, "by default the client is the remote address's host (overload's default)")
	off, err := clientLimits(Config{ClientRate: -1})
	require.NoError(t, err)
	assert.Zero(t, off.rate, "a negative rate: no limit per client")
	for _, bad := range []Config{
		{ClientRate: 5},
		{ClientRate: math.NaN(), ClientBurst: 1},
		{ClientRate: math.Inf(1), ClientBurst: 1},
		{ClientRate: 5, ClientBurst: 1, ClientHeader: "X Forwarded"},
		{ClientRate: 5, ClientBurst: 1, ClientHeader: "X-Real-IP\r\n"},
	} {
		_, err := clientLimits(bad)
		assert.ErrorIs(t, err, shop.ErrInvalidConfig, "%+v", bad)
	}

	byHeader, err := clientLimits(Config{ClientRate: 5, ClientBurst: 1, ClientHeader: "X-Forwarded-For"})
	require.NoError(t, err)
	for _, c := range []struct {
		header []string
		want   string
	}{
		{nil, "192.0.2.7"}, // not through the proxy: the remote address
		{[]string{"203.0.113.5"}, "203.0.113.5"},
		{[]string{"10.0.0.1, 203.0.113.5"}, "203.0.113.5"},            // the proxy's hop is the last
		{[]string{"spoofed", "10.0.0.1,203.0.113.5 "}, "203.0.113.5"}, // of the last header
		{[]string{""}, "192.0.2.7"},
		{[]string{"2001:db8:1:201::1"}, "2001:db8:1:200::/56"}, // an IPv6 host: its /56
		{[]string{"2001:db8:1:2ff:ffff::9"}, "2001:db8:1:200::/56"},
		{[]string{"203.0.113.5:4711"}, "203.0.113.5"}, // a proxy that writes the port
		{[]string{"10.0.0.1, [2001:db8:1:201::1]:443"}, "2001:db8:1:200::/56"},
		{[]string{"unknown"}, "192.0.2.7"}, // not an address: the remote address
		{[]string{strings.Repeat("x", 1<<16)}, "192.0.2.7"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/users/1/orders", nil)
		r.RemoteAddr = "192.0.2.7:4242"
		for _, v := range c.header {
			r.Header.Add("X-Forwarded-For", v)
		}
		assert.Equal(t, c.want, byHeader.name(r), "X-Forwarded-For %s", shop.Quote(strings.Join(c.header, ", ")))
	}
}

func TestCheckPaymentText(t *testing.T) {
	for _, ok := range [][2]string{{"", "order-1"}, {"k-1 ~!", ""}, {strings.Repeat("k", MaxIdempotencyKeyBytes), strings.Repeat("é", MaxReferenceBytes/2)}} {
		assert.NoError(t, checkPaymentText(ok[0], ok[1]), "key %q, reference %q", ok[0], ok[1])
	}
	for _, key := range []string{strings.Repeat("k", MaxIdempotencyKeyBytes+1), "k\xff", "k\x00", "k\n", "ключ"} {
		assert.ErrorIs(t, checkPaymentText(key, "order-1"), errBadKey, "key %q", key)
	}
	for _, ref := range []string{strings.Repeat("r", MaxReferenceBytes+1), "a\x00b", "a\nb", "a\xffb"} {
		assert.ErrorIs(t, checkPaymentText("k", ref), errBadReference, "reference %q", ref)
	}
}

func TestWithDatabaseRefusesWhatIsNotAServerURL(t *testing.T) {
	got, err := withDatabase("postgres://u:secret@db:5432/postgres?sslmode=disable", "shopd_x")
	require.NoError(t, err)
	assert.Equal(t, "postgres://u:secret@db:5432/shopd_x?sslmode=disable", got)
	for _, bad := range []string{"mysql://db/x", "not a url", ""} {
		_, err := withDatabase(bad, "shopd_x")
		assert.ErrorIs(t, err, shop.ErrInvalidConfig, bad)
		if err != nil {
			assert.NotContains(t, err.Error(), "secret")
		}
	}
	_, err = withDatabase("postgres://db/postgres", "")
	assert.ErrorIs(t, err, shop.ErrInvalidConfig)
}

func TestAdmitRefusesInTheServicesErrorShape(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		writeJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	})
	admission, err := overload.NewAdmission(overload.Limits{Concurrency: 1, Queue: 0, RetryAfter: time.Second})
	require.NoError(t, err)
	h, err := admit(slow, admission)
	require.NoError(t, err)
	first := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(first, httptest.NewRequest(http.MethodGet, "/users/1/orders", nil))
	}()
	<-entered // the one turn is taken

	refused := httptest.NewRecorder()
	h.ServeHTTP(refused, httptest.NewRequest(http.MethodGet, "/users/1/orders", nil))
	assert.Equal(t, http.StatusServiceUnavailable, refused.Code)
	assert.Equal(t, "1", refused.Header().Get("Retry-After"))
	assert.Equal(t, "application/json", refused.Header().Get("Content-Type"))
	var body ErrorBody
	require.NoError(t, json.Unmarshal(refused.Body.Bytes(), &body), refused.Body.String())
	assert.Equal(t, CodeOverloaded, body.Error.Code)

	close(release)
	<-done
	assert.Equal(t, http.StatusOK, first.Code)
	assert.JSONEq(t, `{"ok": "yes"}`, first.Body.String(), "an admitted request's answer passes through")
}

// TestScalableRoutesAdmitNoMoreThanThePoolAcrossRoutes: the orders and the
// products read from one pool, so the scalable wiring serves no more of the
// two together, at once, than that pool has connections. Its routes are
// built with handlers that hold each request until released: with the
// pool's connections held by orders and products together, every further
// read, on either route, is queued then refused, or refused at once (503
// overloaded; nothing frees a turn while they wait), and no handler is
// entered; a payment, on a pool of its own, is still served.
func TestScalableRoutesAdmitNoMoreThanThePoolAcrossRoutes(t *testing.T) {
	const conns = 3
	open := func(size int32) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig("postgres://nobody@127.0.0.1:1/none") // never connected: MinConns is 0
		require.NoError(t, err)
		cfg.MaxConns = size
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}
	pools := bulkhead.Pools{Orders: open(conns), Payments: open(2)}
	entered := make(chan string, 64)
	release := make(chan struct{})
	held := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			entered <- name
			<-release
			writeJSON(w, http.StatusOK, map[string]string{"route": name})
		}
	}
	routes, err := scalableRoutes(pools, clientLimit{}, held("orders"), held("product"), held("pay"))
	require.NoError(t, err)
	handlers := map[string]http.Handler{}
	for _, r := range routes {
		handlers[r.pattern] = r.handler
	}
	orders, products, pay := handlers["GET /users/{id}/orders"], handlers["GET /products/{id}"], handlers["POST /payments"]
	require.NotNil(t, orders)
	require.NotNil(t, products)
	require.NotNil(t, pay)

	answers := make(chan *httptest.ResponseRecorder, 64)
	send := func(h http.Handler, method, path string) {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
			answers <- rec
		}()
	}
	// The pool's connections, taken by both routes: as many requests as the
	// pool has connections are all admitted (a hang bound, not a timing: a
	// wiring that admitted fewer would leave this waiting for ever).
	send(orders, http.MethodGet, "/users/1/orders")
	send(products, http.MethodGet, "/products/1")
	send(orders, http.MethodGet, "/users/2/orders")
	for i := range conns {
		select {
		case <-entered:
		case rec := <-answers:
			t.Fatalf("%d of %d requests entered, the pool's connections, then one was answered %d: admission refuses below the pool's size", i, conns, rec.Code)
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d requests entered, the pool's connections, after 30 s: admission holds them below the pool's size", i, conns)
		}
	}

	const extra = 4*conns + 4 // more than the queue holds
	for i := range extra {
		if i%2 == 0 {
			send(products, http.MethodGet, "/products/2")
		} else {
			send(orders, http.MethodGet, "/users/3/orders")
		}
	}
	for range extra {
		select {
		case route := <-entered:
			t.Fatalf("a request on route %s was admitted past the pool's %d connections", route, conns)
		case rec := <-answers:
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
			assert.Equal(t, "1", rec.Header().Get("Retry-After"))
			var body ErrorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
			assert.Equal(t, CodeOverloaded, body.Error.Code)
		}
	}

	send(pay, http.MethodPost, "/payments")
	assert.Equal(t, "pay", <-entered, "a payment is admitted by its own pool's admission")
	close(release)
	for range conns + 1 {
		rec := <-answers
		assert.Equal(t, http.StatusOK, rec.Code, "the requests admitted are served: %s", rec.Body.String())
	}
}

// TestAbandonedRequestsAreCountedCanceled: the two ways the scalable
// wiring leaves a request unanswered because its client has gone, each
// counted by the metrics as canceled, never as the 200 net/http would have
// sent had the client stayed, nor as an error or a shed: a request waiting
// in admission control's queue, and a request whose query failed with its
// context canceled (writeError). The one turn is held by a request that is
// then answered 200.
func TestAbandonedRequestsAreCountedCanceled(t *testing.T) {
	admission, err := overload.NewAdmission(overload.Limits{Concurrency: 1, Queue: 1, QueueTimeout: time.Minute, RetryAfter: time.Second})
	require.NoError(t, err)
	entered := make(chan struct{})
	release := make(chan struct{})
	held, err := admit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		writeJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	}), admission)
	require.NoError(t, err)
	metrics := observe.NewMetrics()
	const route = "GET /users/{id}/orders"
	h := metrics.Instrument(route, held)

	serve := func(ctx context.Context) <-chan *httptest.ResponseRecorder {
		answer := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/users/1/orders", nil))
			answer <- rec
		}()
		return answer
	}
	first := serve(context.Background())
	<-entered // the one turn is taken
	ctx, cancel := context.WithCancel(context.Background())
	queued := serve(ctx) // waits for the turn (or has not reached the queue yet: refused as gone either way)
	cancel()
	<-queued

	// A query failing because the client has gone (pgx returns its
	// context's error): writeError writes nothing.
	gone, cancelGone := context.WithCancel(context.Background())
	cancelGone()
	failed := metrics.Instrument(route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, fmt.Errorf("user 1: %w", r.Context().Err()))
	}))
	failed.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(gone, http.MethodGet, "/users/1/orders", nil))

	close(release)
	assert.Equal(t, http.StatusOK, (<-first).Code)

	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`shop_requests_total{op="GET /users/{id}/orders"} 3`,
		`shop_responses_total{op="GET /users/{id}/orders",status="canceled"} 2`,
		`shop_responses_total{op="GET /users/{id}/orders",status="2xx"} 1`,
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, "shop_request_errors_total{", "a client gone is not an error of the service's")
	assert.NotContains(t, body, "shop_requests_shed_total{", "a client gone is not a shed")
}

// TestServeRefusesNoListenerAndAServiceNotMadeByNew: no listener is an
// error, not a panic in the server's goroutine that ends the process; and a
// Service not made by New is refused, where it would have served
// http.DefaultServeMux (whatever a package registered there, pprof say) and
// then panicked at its shutdown.
func TestServeRefusesNoListenerAndAServiceNotMadeByNew(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a Serve that got past its checks returns at once
	svc := &Service{impl: Naive, handler: http.NotFoundHandler(), admin: http.NotFoundHandler()}
	svc.work, svc.stopWork = context.WithCancel(context.Background())
	require.ErrorIs(t, svc.Serve(ctx, nil, time.Second), shop.ErrInvalidConfig, "Serve")
	require.ErrorIs(t, svc.ServeAdmin(ctx, nil, time.Second), shop.ErrInvalidConfig, "ServeAdmin")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	require.ErrorIs(t, new(Service).Serve(ctx, ln, time.Second), shop.ErrInvalidConfig, "the zero Service")
}

// TestConnsIsWhatTheServiceOpens: for every wiring, Conns says as many
// connections as the pools New opens may hold together (PoolStats), so that a
// room's budget is weighed against the service's truth.
func TestConnsIsWhatTheServiceOpens(t *testing.T) {
	db, err := pgxpool.ParseConfig("postgres://127.0.0.1:1/never-dialled?pool_max_conns=3")
	require.NoError(t, err)
	for _, impl := range Impls() {
		cfg := Config{Impl: impl, DB: db, Gateway: &gateway.Client{URL: "http://127.0.0.1:9"}, CursorKey: []byte("a key of thirty-two bytes, 32 B!")}
		svc, err := New(context.Background(), cfg)
		require.NoError(t, err, impl)
		want := svc.PoolStats().MaxConns
		if impl == Scalable {
			want += WorkerConns // the background work's pool, apart from the routes' (PoolStats)
		}
		assert.Equal(t, want, Conns(cfg), impl)
		svc.Close()
	}
}
