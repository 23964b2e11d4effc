package capstone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/load"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/internal/workshopenv"
	scalableobservability "works-vs-scales/scalable/observability"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 17: the shop as an HTTP service (internal/shopd), in both wirings,
// tested over real TCP on loopback.

// shopdCursorKey signs the scalable wiring's page tokens in the tests.
var shopdCursorKey = []byte("lesson 17's test key, 32 bytes..")

// startShopd serves the wiring impl on db's database and gw, on a loopback
// port, and returns its base URL and a function that shuts it down
// gracefully and returns Serve's error. The service is stopped and closed
// when the test ends.
func startShopd(tb testing.TB, impl string, db *pgxpool.Pool, gw *gateway.Client) (string, func() error) {
	tb.Helper()
	return startShopdWith(tb, shopd.Config{Impl: impl, DB: db.Config(), Gateway: gw, CursorKey: shopdCursorKey})
}

// startShopdWith is startShopd for a configuration of the test's own.
func startShopdWith(tb testing.TB, cfg shopd.Config) (string, func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	var svc *shopd.Service
	serving := false
	tb.Cleanup(func() {
		cancel()
		if serving {
			<-served
		}
		if svc != nil {
			svc.Close()
		}
	})
	benchkit.SkipAboveBudget(tb, shopd.Conns(cfg)) // a room's budget (WORKSHOP_MAX_CONNS)
	svc, err := shopd.New(context.Background(), cfg)
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err) // the cleanup closes svc, and waits for no Serve
	serving = true
	go func() { served <- svc.Serve(ctx, ln, 10*time.Second) }()
	stop := func() error {
		cancel()
		err := <-served
		served <- err // for the cleanup
		return err
	}
	return "http://" + ln.Addr().String(), stop
}

// getJSON GETs url and decodes its JSON answer into v (unless nil),
// returning the status.
func getJSON(tb testing.TB, url string, v any) int {
	tb.Helper()
	resp, err := http.Get(url)
	require.NoError(tb, err)
	defer resp.Body.Close()
	return decodeAnswer(tb, resp, v)
}

// postJSON POSTs body with the idempotency key (none if empty) and decodes
// the answer into v (unless nil), returning the status.
func postJSON(tb testing.TB, url, key string, body []byte, v any) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(gateway.IdempotencyKeyHeader, key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	return decodeAnswer(tb, resp, v)
}

func decodeAnswer(tb testing.TB, resp *http.Response, v any) int {
	tb.Helper()
	assert.Equal(tb, "application/json", resp.Header.Get("Content-Type"), "every answer is JSON")
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	if v != nil {
		require.NoError(tb, json.Unmarshal(body, v), "answer %s", body)
	}
	return resp.StatusCode
}

// scalablePages follows the scalable wiring's pages of the user's orders,
// limit a page, and returns the user and every order.
func scalablePages(tb testing.TB, base string, userID int64, limit int) (shop.User, []shop.Order, int) {
	tb.Helper()
	orders := []shop.Order{}
	var user shop.User
	pages := 0
	cursor := ""
	for {
		var page shopd.OrdersPage
		status := getJSON(tb, fmt.Sprintf("%s/users/%d/orders?limit=%d&cursor=%s", base, userID, limit, url.QueryEscape(cursor)), &page)
		require.Equal(tb, http.StatusOK, status)
		require.LessOrEqual(tb, len(page.Orders), limit)
		user, orders, pages = page.User, append(orders, page.Orders...), pages+1
		if page.NextCursor == "" {
			return user, orders, pages
		}
		cursor = page.NextCursor
	}
}

func TestShopdWiringsAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	gw := benchkit.StartGateway(t)
	naive, _ := startShopd(t, shopd.Naive, db, gw.Client())
	join, _ := startShopd(t, shopd.Join, db, gw.Client())
	page, _ := startShopd(t, shopd.Page, db, gw.Client())
	scalable, _ := startShopd(t, shopd.Scalable, db, gw.Client())

	users := []int64{}
	for _, n := range []int{0, 1, 10, 100, 1000} {
		id, ok := shop.Small.UserWithOrders(n)
		require.True(t, ok, "a user with %d orders", n)
		users = append(users, id)
	}
	const limit = 37 // pages end in the middle of the edge cases, somewhere
	for _, id := range users {
		t.Run(fmt.Sprintf("user=%d", id), func(t *testing.T) {
			var all shopd.OrdersPage
			require.Equal(t, http.StatusOK, getJSON(t, fmt.Sprintf("%s/users/%d/orders", naive, id), &all))
			assert.Empty(t, all.NextCursor, "the naive wiring has no pages")
			var joined shopd.OrdersPage
			require.Equal(t, http.StatusOK, getJSON(t, fmt.Sprintf("%s/users/%d/orders", join, id), &joined))
			assert.Equal(t, all, joined, "the join wiring gives the naive wiring's answer")
			user, orders, pages := scalablePages(t, scalable, id, limit)
			assert.Equal(t, all.User, user)
			require.Len(t, orders, shop.Small.OrdersOf(id))
			assert.Equal(t, all.Orders, orders, "the scalable pages, put together, are the naive list")
			assert.Equal(t, max(1, (len(orders)+limit-1)/limit), pages, "pages of %d", limit)
			user, paged, _ := scalablePages(t, page, id, limit)
			assert.Equal(t, all.User, user)
			assert.Equal(t, all.Orders, paged, "the page wiring's pages, put together, are the naive list")
			// ?limit= is honoured by every wiring: the first page is
			// the same page, whoever serves it (cmd/load's equal outputs).
			for _, base := range []string{naive, join, page, scalable} {
				var first shopd.OrdersPage
				require.Equal(t, http.StatusOK, getJSON(t, fmt.Sprintf("%s/users/%d/orders?limit=%d", base, id, limit), &first))
				assert.Equal(t, all.User, first.User)
				assert.Equal(t, all.Orders[:min(limit, len(all.Orders))], first.Orders, "first page of %d from %s", limit, base)
			}
		})
	}
	t.Run("product", func(t *testing.T) {
		var fromNaive, fromScalable shop.Product
		require.Equal(t, http.StatusOK, getJSON(t, naive+"/products/7", &fromNaive))
		require.Equal(t, http.StatusOK, getJSON(t, scalable+"/products/7", &fromScalable))
		assert.Equal(t, fromNaive, fromScalable)
		assert.Equal(t, shop.SearchEdgeProductName, fromScalable.Name)
	})
}

// statementCounter counts the statements sent on a pool: the tracer a pool
// had before the service added its own.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestShopdScalableTracesEachRequestAndItsQueries(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	gw := benchkit.StartGateway(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	cfg := db.Config()
	counter := &statementCounter{}
	cfg.ConnConfig.Tracer = counter
	base, stop := startShopdWith(t, shopd.Config{Impl: shopd.Scalable, DB: cfg, Gateway: gw.Client(), CursorKey: shopdCursorKey, Tracer: tp})
	id, _ := shop.Small.UserWithOrders(10)
	require.Equal(t, http.StatusOK, getJSON(t, fmt.Sprintf("%s/users/%d/orders", base, id), nil))
	require.NoError(t, stop()) // every span ended

	var request sdktrace.ReadOnlySpan
	var queries []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindServer:
			require.Nil(t, request, "two request spans for one request")
			request = s
		case trace.SpanKindClient:
			queries = append(queries, s)
		}
	}
	require.NotNil(t, request, "no request span among %d spans", len(spans.Ended()))
	assert.Equal(t, "GET /users/{id}/orders", request.Name(), "named after the route, not the URL")
	assert.Contains(t, request.Attributes(), attribute.Int("http.response.status_code", http.StatusOK))
	require.Len(t, queries, 2, "the user, then the page")
	for _, q := range queries {
		assert.Contains(t, q.Attributes(), scalableobservability.AttrDBSystem.String("postgresql"))
		assert.Equal(t, request.SpanContext().TraceID(), q.SpanContext().TraceID(), "the query's trace is the request's")
		assert.Equal(t, request.SpanContext().SpanID(), q.Parent().SpanID(), "the query's span is a child of the request's")
	}
	// The pool's own tracer still sees every query: the service adds its
	// tracer to it, not in its place. (Opening the pools may ask more.)
	assert.GreaterOrEqual(t, counter.n.Load(), int64(2))
}

func TestShopdPaymentsAgree(t *testing.T) {
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		t.Run("impl="+impl, func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := benchkit.StartGateway(t)
			base, _ := startShopd(t, impl, db, gw.Client())
			body := []byte(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "order-1"}`)
			var first, again shop.Payment
			require.Equal(t, http.StatusOK, postJSON(t, base+"/payments", "key-1", body, &first))
			assert.Equal(t, shop.Payment{ID: first.ID, UserID: 5, AmountCents: 1250, Currency: "EUR", Status: shop.PaymentCharged, ChargeID: first.ChargeID}, first)
			require.Equal(t, http.StatusOK, postJSON(t, base+"/payments", "key-1", body, &again), "the same key again")
			assert.Equal(t, first, again, "the same key is the same payment")
			assert.Len(t, gw.Charges(), 1, "charged once")

			var refused shopd.ErrorBody
			other := []byte(`{"user_id": 5, "amount_cents": 999, "currency": "EUR", "reference": "order-2"}`)
			assert.Equal(t, http.StatusUnprocessableEntity, postJSON(t, base+"/payments", "key-1", other, &refused))
			assert.Equal(t, shopd.CodeKeyReused, refused.Error.Code)
			assert.Equal(t, http.StatusBadRequest, postJSON(t, base+"/payments", "", other, &refused))
			assert.Equal(t, shopd.CodeNoKey, refused.Error.Code)
			assert.Len(t, gw.Charges(), 1, "refused payments charge nothing")
		})
	}
}

func TestShopdRefusesBadInput(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	naive, _ := startShopd(t, shopd.Naive, db, gw.Client())
	page, _ := startShopd(t, shopd.Page, db, gw.Client())
	scalable, _ := startShopd(t, shopd.Scalable, db, gw.Client())

	heavy, _ := shop.Small.UserWithOrders(100)
	other, _ := shop.Small.UserWithOrders(10)
	var first shopd.OrdersPage
	require.Equal(t, http.StatusOK, getJSON(t, fmt.Sprintf("%s/users/%d/orders?limit=10", scalable, heavy), &first))
	require.NotEmpty(t, first.NextCursor)
	tampered := []byte(first.NextCursor)
	tampered[len(tampered)/2] ^= 1
	unknown := shop.Small.Users() + 1

	countPayments := func() int64 {
		var n int64
		require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM payments`).Scan(&n))
		return n
	}
	paymentsBefore := countPayments()
	ok := []byte(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "order-1"}`)

	cases := []struct {
		name, base, method, path string
		body                     []byte
		status                   int
		code                     string
	}{
		{"non-numeric id", scalable, "GET", "/users/abc/orders", nil, 400, shopd.CodeInvalidID},
		{"non-numeric id", naive, "GET", "/users/abc/orders", nil, 400, shopd.CodeInvalidID},
		{"id zero", scalable, "GET", "/users/0/orders", nil, 400, shopd.CodeInvalidID},
		{"id negative", naive, "GET", "/users/-3/orders", nil, 400, shopd.CodeInvalidID},
		{"id overflows", scalable, "GET", "/users/99999999999999999999/orders", nil, 400, shopd.CodeInvalidID},
		{"negative limit", scalable, "GET", fmt.Sprintf("/users/%d/orders?limit=-1", heavy), nil, 400, shopd.CodeInvalidPage},
		{"zero limit", scalable, "GET", fmt.Sprintf("/users/%d/orders?limit=0", heavy), nil, 400, shopd.CodeInvalidPage},
		{"huge limit", scalable, "GET", fmt.Sprintf("/users/%d/orders?limit=%d", heavy, shop.MaxPageSize+1), nil, 400, shopd.CodeInvalidPage},
		{"limit past the deadline's page", scalable, "GET", fmt.Sprintf("/users/%d/orders?limit=%d", heavy, shopd.MaxOrdersPage+1), nil, 400, shopd.CodeInvalidPage},
		{"the largest page of all", scalable, "GET", fmt.Sprintf("/users/%d/orders?limit=%d", heavy, shop.MaxPageSize), nil, 400, shopd.CodeInvalidPage},
		{"huge limit", page, "GET", fmt.Sprintf("/users/%d/orders?limit=%d", heavy, shop.MaxPageSize+1), nil, 400, shopd.CodeInvalidPage},
		{"non-numeric limit", scalable, "GET", fmt.Sprintf("/users/%d/orders?limit=ten", heavy), nil, 400, shopd.CodeInvalidPage},
		{"tampered cursor", scalable, "GET", fmt.Sprintf("/users/%d/orders?cursor=%s", heavy, url.QueryEscape(string(tampered))), nil, 400, shopd.CodeInvalidPage},
		{"another user's cursor", scalable, "GET", fmt.Sprintf("/users/%d/orders?cursor=%s", other, url.QueryEscape(first.NextCursor)), nil, 400, shopd.CodeInvalidPage},
		{"garbage cursor", scalable, "GET", fmt.Sprintf("/users/%d/orders?cursor=%%00%%ff", heavy), nil, 400, shopd.CodeInvalidPage},
		{"unknown user", scalable, "GET", fmt.Sprintf("/users/%d/orders", unknown), nil, 404, shopd.CodeUserNotFound},
		{"unknown user", naive, "GET", fmt.Sprintf("/users/%d/orders", unknown), nil, 404, shopd.CodeUserNotFound},
		{"negative limit", page, "GET", fmt.Sprintf("/users/%d/orders?limit=-1", heavy), nil, 400, shopd.CodeInvalidPage},
		{"negative limit", naive, "GET", fmt.Sprintf("/users/%d/orders?limit=-1", heavy), nil, 400, shopd.CodeInvalidPage},
		{"non-numeric limit", naive, "GET", fmt.Sprintf("/users/%d/orders?limit=ten", heavy), nil, 400, shopd.CodeInvalidPage},
		{"tampered cursor", page, "GET", fmt.Sprintf("/users/%d/orders?cursor=%s", heavy, url.QueryEscape(string(tampered))), nil, 400, shopd.CodeInvalidPage},
		{"unknown user", page, "GET", fmt.Sprintf("/users/%d/orders", unknown), nil, 404, shopd.CodeUserNotFound},
		{"unknown product", scalable, "GET", "/products/999999999", nil, 404, shopd.CodeProductMissing},
		{"unknown product", naive, "GET", "/products/999999999", nil, 404, shopd.CodeProductMissing},
		{"no such route", scalable, "GET", "/admin", nil, 404, shopd.CodeNoRoute},
		{"wrong method", naive, "POST", "/users/1/orders", []byte(`{}`), 405, shopd.CodeWrongMethod},
		{"oversized body", scalable, "POST", "/payments", append(bytes.TrimSuffix(ok, []byte("}")), []byte(`, "pad": "`+strings.Repeat("x", shopd.MaxBodyBytes)+`"}`)...), 413, shopd.CodeBodyTooLarge},
		{"malformed body", scalable, "POST", "/payments", []byte(`{"user_id": "five"`), 400, shopd.CodeMalformedBody},
		{"malformed body", naive, "POST", "/payments", []byte(`not json`), 400, shopd.CodeMalformedBody},
		{"unknown field", scalable, "POST", "/payments", []byte(`{"user_id": 5, "amount_cents": 1, "currency": "EUR", "reference": "r", "admin": true}`), 400, shopd.CodeMalformedBody},
		{"negative amount", scalable, "POST", "/payments", []byte(`{"user_id": 5, "amount_cents": -1250, "currency": "EUR", "reference": "r"}`), 400, shopd.CodeInvalidPayment},
		{"huge amount", scalable, "POST", "/payments", []byte(`{"user_id": 5, "amount_cents": 9223372036854775807, "currency": "EUR", "reference": "r"}`), 400, shopd.CodeInvalidPayment},
		{"SQL for a currency", scalable, "POST", "/payments", []byte(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR'); DROP TABLE payments; --", "reference": "r"}`), 400, shopd.CodeInvalidPayment},
		{"unknown payer", scalable, "POST", "/payments", []byte(fmt.Sprintf(`{"user_id": %d, "amount_cents": 1250, "currency": "EUR", "reference": "r"}`, unknown)), 404, shopd.CodeUserNotFound},
	}
	for _, c := range cases {
		impl := shopd.Naive
		switch c.base {
		case page:
			impl = shopd.Page
		case scalable:
			impl = shopd.Scalable
		}
		t.Run(fmt.Sprintf("impl=%s/%s", impl, c.name), func(t *testing.T) {
			var answer shopd.ErrorBody
			var status int
			if c.method == "GET" {
				status = getJSON(t, c.base+c.path, &answer)
			} else {
				status = postJSON(t, c.base+c.path, "key-"+c.name, c.body, &answer)
			}
			assert.Equal(t, c.status, status)
			assert.Equal(t, c.code, answer.Error.Code, "message %q", answer.Error.Message)
			assert.NotEmpty(t, answer.Error.Message)
			assert.LessOrEqual(t, len(answer.Error.Message), 400, "the message does not echo the input")
		})
	}
	assert.Equal(t, paymentsBefore, countPayments(), "bad input changes nothing")
	assert.Empty(t, gw.Charges(), "bad input charges nothing")
}

// signalTransport tells arrived when a request leaves for the gateway.
type signalTransport struct{ arrived chan<- struct{} }

func (s signalTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case s.arrived <- struct{}{}:
	default: // a retry's request: the test waits for the first only
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestShopdShutdownDrainsRequestsInFlight(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	gw.SetFaults(gatewaytest.Faults{Hang: true}) // a payment stays in flight until released
	arrived := make(chan struct{}, 1)
	client := &gateway.Client{URL: gw.URL(), HTTP: &http.Client{Transport: signalTransport{arrived}}}
	base, stop := startShopd(t, shopd.Naive, db, client)

	type answer struct {
		status  int
		payment shop.Payment
	}
	answered := make(chan answer, 1)
	go func() {
		var a answer
		a.status = postJSON(t, base+"/payments", "drain-1", []byte(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "order-1"}`), &a.payment)
		answered <- a
	}()
	<-arrived // the request is in flight, waiting on the gateway

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// The server stops accepting at once: wait for the listener to close.
	addr := strings.TrimPrefix(base, "http://")
	for {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		conn.Close()
	}
	select {
	case err := <-stopped:
		t.Fatalf("the server stopped with a request in flight: %v", err)
	case a := <-answered:
		t.Fatalf("the request was answered before the gateway was: %+v", a)
	default:
	}

	gw.SetFaults(gatewaytest.Faults{}) // the gateway answers
	a := <-answered
	assert.Equal(t, http.StatusOK, a.status, "the request in flight is answered")
	assert.Equal(t, shop.PaymentCharged, a.payment.Status)
	assert.NoError(t, <-stopped, "the shutdown was graceful")
}

func TestShopdInitTouchesOnlyItsOwnDatabase(t *testing.T) {
	server := pgtest.ServerURL(t)
	ctx := context.Background()
	prefix := os.Getenv(workshopenv.DBPrefix)
	if prefix == "" {
		prefix = workshopenv.DefaultPrefix
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	ours, foreign := prefix+"shopd_test_"+suffix, prefix+"shopd_foreign_"+suffix
	admin, err := pgx.Connect(ctx, server)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, name := range []string{ours, foreign} {
			_, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			assert.NoError(t, err)
		}
		admin.Close(ctx)
	})

	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{foreign}.Sanitize())
	require.NoError(t, err)
	_, err = shopd.InitDatabase(ctx, server, foreign, shop.Small)
	assert.ErrorIs(t, err, shopd.ErrNotOurs, "a database it did not make is not loaded")
	dropped, err := shopd.DropDatabase(ctx, server, foreign)
	assert.ErrorIs(t, err, shopd.ErrNotOurs, "nor dropped")
	assert.False(t, dropped)

	foreignURL, err := url.Parse(server)
	require.NoError(t, err)
	foreignURL.Path = "/" + foreign
	assert.ErrorIs(t, shopd.CheckShop(ctx, foreignURL.String()), shopd.ErrNoShop, "a service on an empty database says so at once")

	dbURL, err := shopd.InitDatabase(ctx, server, ours, shop.Small)
	require.NoError(t, err)
	assert.NoError(t, shopd.CheckShop(ctx, dbURL))
	db, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	var users int
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&users))
	require.NoError(t, db.Close(ctx))
	assert.Equal(t, shop.Small.Users(), users, "the shop is loaded")
	oid := func() uint32 {
		var oid uint32
		require.NoError(t, admin.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = $1", ours).Scan(&oid))
		return oid
	}
	before := oid()
	again, err := shopd.InitDatabase(ctx, server, ours, shop.Small)
	require.NoError(t, err)
	assert.Equal(t, dbURL, again)
	assert.Equal(t, before, oid(), "loaded once, then reused: not made again")

	dropped, err = shopd.DropDatabase(ctx, server, ours)
	require.NoError(t, err)
	assert.True(t, dropped)
	var exists bool
	require.NoError(t, admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", foreign).Scan(&exists))
	assert.True(t, exists, "the foreign database is still there")
}

func TestShopdLoadSmoke(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	gw := benchkit.StartGateway(t)
	// The load stands for many users, from one address: no limit per
	// client, which would count them as one (cmd/load names each request's
	// user in X-Forwarded-For instead), and allow it two pages at once.
	base, _ := startShopdWith(t, shopd.Config{Impl: shopd.Scalable, DB: db.Config(), Gateway: gw.Client(), CursorKey: shopdCursorKey, ClientRate: -1})
	// A low rate: far below what the scalable wiring serves on any machine.
	const rate = 50
	cfg := load.Config{Targets: shopd.OrdersTargets(base, shop.Small, 1), Duration: time.Second, Timeout: 5 * time.Second}
	steps, err := load.Open(context.Background(), cfg, rate)
	require.NoError(t, err)
	require.Len(t, steps, 1)
	s := steps[0]
	// How many left in the second is the pacer's (a busy machine sends
	// one fewer; internal/load's tests hold it to its schedule); what this
	// test asks is that each one sent was answered.
	assert.Positive(t, s.Requests, "requests sent")
	assert.LessOrEqual(t, s.Requests, rate, "requests sent")
	// Every request is answered: served, or shed at once (503) if the
	// machine running the test is too busy for a request's deadline, which
	// is the wiring doing its job, not a failure; nothing else, no timeout.
	assert.Equal(t, s.Requests, s.OK+s.Refused, "every request served or shed: %v", s.Codes)
	assert.Equal(t, s.Refused, s.Codes[http.StatusServiceUnavailable], "shed only with 503: %v", s.Codes)
	// The floor is one served: how many more are served, rather than shed,
	// depends on how busy the machine is against the queue's 100 ms and the
	// request's deadline, a timing no test may bound. Every one served is
	// a 2xx, every other one a 503, by the assertions around it.
	assert.Positive(t, s.OK, "requests served: %v", s.Codes)
	assert.Zero(t, s.Timeouts)
	assert.Equal(t, s.Refused, s.Errors, "no error but the sheds: %v", s.Codes)
}

// What a hostile or careless client sends the service, over HTTP, in both
// wirings.

// shopdPayers is how many clients send the same payment at once.
const shopdPayers = 8

func TestShopdChargesOnceForConcurrentDuplicates(t *testing.T) {
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		t.Run(benchkit.Name("impl", impl), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := benchkit.StartGateway(t)
			base, _ := startShopd(t, impl, db, gw.Client())
			body := []byte(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "order-1"}`)

			start := make(chan struct{})
			statuses := make([]int, shopdPayers)
			payments := make([]shop.Payment, shopdPayers)
			var wg sync.WaitGroup
			for i := range shopdPayers {
				wg.Go(func() {
					<-start // every client sends at once
					statuses[i] = postJSON(t, base+"/payments", "double-click", body, &payments[i])
				})
			}
			close(start)
			wg.Wait()

			require.Len(t, gw.Charges(), 1, "one key, one charge, however many clients send it")
			var charged shop.Payment
			for i, status := range statuses {
				switch status {
				case http.StatusOK:
					if charged.ID == 0 {
						charged = payments[i]
					}
					assert.Equal(t, charged, payments[i], "every success is the one payment")
				case http.StatusConflict:
					// In progress: the scalable wiring's lease.
				default:
					t.Errorf("client %d: status %d", i, status)
				}
			}
			var rows int
			require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE user_id = 5 AND idempotency_key = 'double-click'`).Scan(&rows))
			assert.Equal(t, 1, rows, "one payment recorded")
		})
	}
}

func TestShopdKeepsEachUsersIdempotencyKeys(t *testing.T) {
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		t.Run(benchkit.Name("impl", impl), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := benchkit.StartGateway(t)
			base, _ := startShopd(t, impl, db, gw.Client())

			var mine, theirs shop.Payment
			require.Equal(t, http.StatusOK, postJSON(t, base+"/payments", "order-1", []byte(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "order-1"}`), &mine))
			// Another user's client picks the same key (the name of its order):
			// it is their own payment, charged on its own, never the first user's.
			require.Equal(t, http.StatusOK, postJSON(t, base+"/payments", "order-1", []byte(`{"user_id": 6, "amount_cents": 999, "currency": "EUR", "reference": "order-1"}`), &theirs))
			assert.Equal(t, int64(6), theirs.UserID)
			assert.Equal(t, int64(999), theirs.AmountCents)
			assert.NotEqual(t, mine.ID, theirs.ID, "another payment")
			assert.NotEqual(t, mine.ChargeID, theirs.ChargeID, "another charge: user 6 is not given user 5's")
			charges := gw.Charges()
			require.Len(t, charges, 2, "each user charged once")
			assert.Equal(t, int64(999), charges[1].AmountCents, "user 6 charged what they asked")
		})
	}
}

func TestShopdRefusesHostileRequests(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	naive, _ := startShopd(t, shopd.Naive, db, gw.Client())
	scalable, _ := startShopd(t, shopd.Scalable, db, gw.Client())
	heavy, _ := shop.Small.UserWithOrders(100)
	const okPayment = `{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "r"}`
	// Distinct characters: a key the index cannot compress below its limit.
	var longKey strings.Builder
	for i := range 4000 {
		longKey.WriteByte(byte('!' + i*7919%94))
	}
	keys := map[string]string{"key too long": longKey.String(), "key not text": "k\xff"}

	cases := []struct {
		name, method, path string
		body               string
		status             int
		code               string
	}{
		{"product id not a number", "GET", "/products/abc", "", 400, shopd.CodeInvalidID},
		{"product id zero", "GET", "/products/0", "", 400, shopd.CodeInvalidID},
		{"product id negative", "GET", "/products/-1", "", 400, shopd.CodeInvalidID},
		{"product id overflows", "GET", "/products/9223372036854775808", "", 400, shopd.CodeInvalidID},
		{"product id max", "GET", "/products/9223372036854775807", "", 404, shopd.CodeProductMissing},
		{"user id max", "GET", "/users/9223372036854775807/orders", "", 404, shopd.CodeUserNotFound},
		{"user id with a sign", "GET", "/users/+5/orders", "", 400, shopd.CodeInvalidID},
		{"user id in hex", "GET", "/users/0x5/orders", "", 400, shopd.CodeInvalidID},
		{"user id with a leading zero", "GET", "/users/05/orders", "", 400, shopd.CodeInvalidID},
		{"empty body", "POST", "/payments", "", 400, shopd.CodeMalformedBody},
		{"JSON array", "POST", "/payments", "[1, 2]", 400, shopd.CodeMalformedBody},
		{"wrong type", "POST", "/payments", `{"user_id": 5, "amount_cents": "1250", "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"amount overflows", "POST", "/payments", `{"user_id": 5, "amount_cents": 9223372036854775808, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"fraction of a cent", "POST", "/payments", `{"user_id": 5, "amount_cents": 12.5, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"no such method", "DELETE", "/payments", "", 405, shopd.CodeWrongMethod},
		{"GET a POST route", "GET", "/payments", "", 405, shopd.CodeWrongMethod},
		{"key too long", "POST", "/payments", okPayment, 400, shopd.CodeInvalidKey},
		{"key not text", "POST", "/payments", okPayment, 400, shopd.CodeInvalidKey},
		{"reference with NUL", "POST", "/payments", `{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "a\u0000b"}`, 400, shopd.CodeInvalidPayment},
		{"reference too long", "POST", "/payments", `{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "` + strings.Repeat("r", shopd.MaxReferenceBytes+1) + `"}`, 400, shopd.CodeInvalidPayment},
	}
	scalableOnly := []struct {
		name, method, path string
		body               string
		status             int
		code               string
	}{
		{"limit max int", "GET", fmt.Sprintf("/users/%d/orders?limit=9223372036854775807", heavy), "", 400, shopd.CodeInvalidPage},
		{"limit overflows", "GET", fmt.Sprintf("/users/%d/orders?limit=99999999999999999999", heavy), "", 400, shopd.CodeInvalidPage},
		{"limit a fraction", "GET", fmt.Sprintf("/users/%d/orders?limit=1.5", heavy), "", 400, shopd.CodeInvalidPage},
		{"JSON null", "POST", "/payments", "null", 400, shopd.CodeMalformedBody},
		{"no payer", "POST", "/payments", `{"amount_cents": 1250, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeInvalidPayment},
		{"zero amount", "POST", "/payments", `{"user_id": 5, "amount_cents": 0, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeInvalidPayment},
		{"two payments in one body", "POST", "/payments", `{"user_id": 5, "amount_cents": 1, "currency": "EUR", "reference": "r"} {"user_id": 5, "amount_cents": 1, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
	}
	run := func(t *testing.T, base string, c struct {
		name, method, path string
		body               string
		status             int
		code               string
	}) {
		req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		require.NoError(t, err)
		key, ok := keys[c.name]
		if !ok {
			key = "hostile-" + c.name
		}
		req.Header.Set("Idempotency-Key", key)
		if c.method == "POST" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var answer shopd.ErrorBody
		assert.Equal(t, c.status, decodeAnswer(t, resp, &answer))
		if c.code != "*" {
			assert.Equal(t, c.code, answer.Error.Code, "message %q", answer.Error.Message)
		}
		assert.NotEmpty(t, answer.Error.Message)
		if c.status == http.StatusMethodNotAllowed {
			assert.NotEmpty(t, resp.Header.Get("Allow"), "a 405 says which methods the route has")
		}
	}
	for _, c := range cases {
		t.Run("impl=naive/"+c.name, func(t *testing.T) { run(t, naive, c) })
		t.Run("impl=scalable/"+c.name, func(t *testing.T) { run(t, scalable, c) })
	}
	for _, c := range scalableOnly {
		t.Run("impl=scalable/"+c.name, func(t *testing.T) { run(t, scalable, c) })
	}
	var n int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE idempotency_key LIKE 'hostile-%'`).Scan(&n))
	assert.Zero(t, n, "no hostile request recorded a payment")
	assert.Empty(t, gw.Charges(), "no hostile request charged anything")
}
