package capstone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/scalable/bulkheads"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 17: the service in operation, over real TCP on loopback: outages
// answered 503, the background work that finishes every payment, a fair
// share per client, and metrics on an address of their own. This file keeps
// its helpers to itself.

// opsCursorKey signs the scalable wiring's page tokens in these tests.
var opsCursorKey = []byte("lesson 17's ops test key, 32 B..")

// opsService is a service the test started, on a loopback port.
type opsService struct {
	svc  *shopd.Service
	base string // the API's URL
	stop func() error
}

// opsStart serves cfg on a loopback port, shutting down within grace, and
// returns it; stop shuts it down gracefully and returns Serve's error. The
// service is stopped and closed when the test ends.
func opsStart(tb testing.TB, cfg shopd.Config, grace time.Duration) *opsService {
	tb.Helper()
	if cfg.CursorKey == nil {
		cfg.CursorKey = opsCursorKey
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	var svc *shopd.Service
	serving := false
	tb.Cleanup(func() {
		cancel()
		if serving {
			served <- <-served
		}
		if svc != nil {
			svc.Close()
		}
	})
	benchkit.SkipAboveBudget(tb, shopd.Conns(cfg)) // a room's budget (WORKSHOP_MAX_CONNS)
	svc, err := shopd.New(context.Background(), cfg)
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	serving = true
	go func() { served <- svc.Serve(ctx, ln, grace) }()
	return &opsService{svc: svc, base: "http://" + ln.Addr().String(), stop: func() error {
		cancel()
		err := <-served
		served <- err // for the cleanup
		return err
	}}
}

// opsAnswer is what the service answered.
type opsAnswer struct {
	status int
	header http.Header
	body   []byte
}

// code returns the answer's error code, "" if it is not an error.
func (a opsAnswer) code() string {
	var e shopd.ErrorBody
	json.Unmarshal(a.body, &e)
	return e.Error.Code
}

// opsDo sends a request with client (http.DefaultClient if nil) and reads
// the answer.
func opsDo(tb testing.TB, client *http.Client, method, url, key string, body []byte) opsAnswer {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(tb, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(gateway.IdempotencyKeyHeader, key)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return opsAnswer{resp.StatusCode, resp.Header, b}
}

// opsPayment is user 5's payment of 12.50 EUR, for reference.
func opsPayment(reference string) []byte {
	return []byte(fmt.Sprintf(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": %q}`, reference))
}

// opsPaymentRow returns the status and charge id stored under user 5's key.
func opsPaymentRow(tb testing.TB, db *pgxpool.Pool, key string) (status, chargeID string) {
	tb.Helper()
	err := db.QueryRow(context.Background(), `SELECT status, coalesce(charge_id, '') FROM payments WHERE user_id = 5 AND idempotency_key = $1`, key).Scan(&status, &chargeID)
	require.NoError(tb, err)
	return status, chargeID
}

// opsEventually waits, up to a generous deadline, until cond holds: a state
// the service reaches on its own, in the background.
func opsEventually(tb testing.TB, cond func() bool, what string) {
	tb.Helper()
	require.Eventually(tb, cond, time.Minute, 20*time.Millisecond, what)
}

// opsHold is a gateway client whose first request is held on its way until
// release is closed: arrived is closed when it is.
func opsHold(gw *gatewaytest.Server) (client *gateway.Client, arrived <-chan struct{}, release chan<- struct{}) {
	arrive, let := make(chan struct{}), make(chan struct{})
	var once sync.Once
	return &gateway.Client{URL: gw.URL(), HTTP: &http.Client{Transport: opsTransport(func() {
		once.Do(func() {
			close(arrive)
			<-let
		})
	})}}, arrive, let
}

// opsTransport calls itself before each request leaves for the gateway,
// then sends it, whatever the request's context says meanwhile.
type opsTransport func()

func (t opsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t()
	return http.DefaultTransport.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
}

func TestShopdAnswersADatabaseOutageWith503(t *testing.T) {
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		t.Run("impl="+impl, func(t *testing.T) {
			db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
			gw := gatewaytest.Start()
			t.Cleanup(gw.Close)
			s := opsStart(t, shopd.Config{Impl: impl, DB: db.Config(), Gateway: gw.Client()}, 10*time.Second)
			user, _ := shop.Small.UserWithOrders(10)
			orders := fmt.Sprintf("%s/users/%d/orders", s.base, user)
			require.Equal(t, http.StatusOK, opsDo(t, nil, "GET", orders, "", nil).status)

			proxy.Down() // every connection reset, every new one refused
			for _, a := range []opsAnswer{
				opsDo(t, nil, "GET", orders, "", nil),
				opsDo(t, nil, "GET", s.base+"/products/42", "", nil),
				opsDo(t, nil, "POST", s.base+"/payments", "outage", opsPayment("outage")),
			} {
				assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
				assert.Equal(t, shopd.CodeUnavailable, a.code(), "%s", a.body)
				assert.Equal(t, "1", a.header.Get("Retry-After"), "when to come back")
				assert.NotContains(t, string(a.body), "127.0.0.1", "nothing of the inside")
			}
			assert.Empty(t, gw.Charges(), "no record, no charge")

			// Back with the database, a client comes back as Retry-After
			// says, until it is served: the first request may still meet a
			// connection the outage broke, or its deadline while the pool
			// dials again on a busy machine, and answer 503 once more.
			proxy.Up()
			opsEventually(t, func() bool { return opsDo(t, nil, "GET", orders, "", nil).status == http.StatusOK }, "served again, back with the database")
			var a opsAnswer
			opsEventually(t, func() bool {
				a = opsDo(t, nil, "POST", s.base+"/payments", "outage", opsPayment("outage"))
				return a.status != http.StatusServiceUnavailable
			}, "the payment's key served again, back with the database")
			assert.Equal(t, http.StatusOK, a.status, "the same key again: %s", a.body)
			assert.Len(t, gw.Charges(), 1, "charged once, however many times the key came back")
		})
	}
}

func TestShopdPaymentInProgressSaysWhenToComeBack(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := gatewaytest.Start()
	t.Cleanup(gw.Close)
	client, arrived, release := opsHold(gw)
	s := opsStart(t, shopd.Config{Impl: shopd.Scalable, DB: db.Config(), Gateway: client}, 10*time.Second)
	first := make(chan opsAnswer, 1)
	go func() { first <- opsDo(t, nil, "POST", s.base+"/payments", "twice", opsPayment("twice")) }()
	<-arrived // the first is charging, its row leased to it

	a := opsDo(t, nil, "POST", s.base+"/payments", "twice", opsPayment("twice"))
	assert.Equal(t, http.StatusConflict, a.status, "%s", a.body)
	assert.Equal(t, shopd.CodeInProgress, a.code())
	assert.Equal(t, "1", a.header.Get("Retry-After"), "when to ask again")
	close(release)
	assert.Equal(t, http.StatusOK, (<-first).status)
	assert.Len(t, gw.Charges(), 1)
}

func TestShopdSendsAQueuedPaymentAndItsRetryAnswersCharged(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := gatewaytest.Start()
	t.Cleanup(gw.Close)
	s := opsStart(t, shopd.Config{Impl: shopd.Scalable, DB: db.Config(), Gateway: gw.Client()}, 10*time.Second)
	gw.SetFaults(gatewaytest.Faults{FailureRate: 1, Failure: gatewaytest.Failure{Status: http.StatusServiceUnavailable}})

	var p shop.Payment
	a := opsDo(t, nil, "POST", s.base+"/payments", "queued", opsPayment("queued"))
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.NoError(t, json.Unmarshal(a.body, &p))
	assert.Equal(t, shop.PaymentQueued, p.Status, "taken, to be charged when the gateway is back")
	require.NoError(t, json.Unmarshal(opsDo(t, nil, "POST", s.base+"/payments", "queued", opsPayment("queued")).body, &p))
	assert.Equal(t, shop.PaymentQueued, p.Status, "its retry answers what it is now")
	assert.Empty(t, gw.Charges())

	gw.SetFaults(gatewaytest.Faults{}) // back: the service's relay sends it, on its own
	opsEventually(t, func() bool { status, _ := opsPaymentRow(t, db, "queued"); return status == shop.PaymentCharged }, "the relay charges the queued payment")
	a = opsDo(t, nil, "POST", s.base+"/payments", "queued", opsPayment("queued"))
	require.Equal(t, http.StatusOK, a.status)
	require.NoError(t, json.Unmarshal(a.body, &p))
	assert.Equal(t, shop.PaymentCharged, p.Status, "the retry answers charged once it is sent")
	require.Len(t, gw.Charges(), 1, "charged once")
	assert.Equal(t, gw.Charges()[0].ID, p.ChargeID)
}

// opsQueue writes user 5's payment under key as the scalable wiring queues
// it: queued, in the outbox.
func opsQueue(tb testing.TB, db *pgxpool.Pool, key string) {
	tb.Helper()
	var id int64
	require.NoError(tb, db.QueryRow(context.Background(), `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status)
		VALUES ($1, $1, 5, 1250, 'EUR', 'queued') RETURNING id`, key).Scan(&id))
	_, err := db.Exec(context.Background(), `INSERT INTO payment_outbox (payment_id) VALUES ($1)`, id)
	require.NoError(tb, err)
}

func TestShopdShutdownWaitsForTheBackgroundWork(t *testing.T) {
	t.Run("within the grace", func(t *testing.T) {
		db := pgtest.ShopClone(t, shop.Small)
		gw := gatewaytest.Start()
		t.Cleanup(gw.Close)
		opsQueue(t, db, "queued")
		client, arrived, release := opsHold(gw)
		s := opsStart(t, shopd.Config{Impl: shopd.Scalable, DB: db.Config(), Gateway: client}, time.Minute)
		<-arrived // the relay is sending the payment

		stopped := make(chan error, 1)
		go func() { stopped <- s.stop() }()
		// The server stops accepting at once: wait for the listener to close.
		for {
			conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
			if err != nil {
				break
			}
			conn.Close()
		}
		select {
		case err := <-stopped:
			t.Fatalf("the service stopped with a payment half sent: %v", err)
		default:
		}
		close(release)
		require.NoError(t, <-stopped, "the shutdown waited for the relay")
		status, chargeID := opsPaymentRow(t, db, "queued")
		assert.Equal(t, shop.PaymentCharged, status, "the payment at hand was finished")
		require.Len(t, gw.Charges(), 1)
		assert.Equal(t, gw.Charges()[0].ID, chargeID)
	})
	t.Run("past the grace", func(t *testing.T) {
		db := pgtest.ShopClone(t, shop.Small)
		gw := gatewaytest.Start()
		t.Cleanup(gw.Close)
		opsQueue(t, db, "queued")
		client, arrived, release := opsHold(gw)
		s := opsStart(t, shopd.Config{Impl: shopd.Scalable, DB: db.Config(), Gateway: client}, 50*time.Millisecond)
		<-arrived
		err := s.stop()
		assert.ErrorIs(t, err, context.DeadlineExceeded, "the grace ran out: said, not hidden")
		close(release) // Close then waits for the payment at hand
		s.svc.Close()
		status, _ := opsPaymentRow(t, db, "queued")
		assert.Equal(t, shop.PaymentCharged, status, "finished before the pools closed")
	})
}

func TestShopdServesMetricsOnTheAdminAddressOnly(t *testing.T) {
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
	gw := gatewaytest.Start()
	t.Cleanup(gw.Close)
	// Two requests per client and route, then 429: a shed, not an error.
	s := opsStart(t, shopd.Config{Impl: shopd.Scalable, DB: db.Config(), Gateway: gw.Client(), ClientRate: 0.001, ClientBurst: 2}, 10*time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	admin := make(chan error, 1)
	go func() { admin <- s.svc.ServeAdmin(ctx, ln, time.Second) }()
	t.Cleanup(func() { cancel(); <-admin })

	user, _ := shop.Small.UserWithOrders(10)
	orders := fmt.Sprintf("%s/users/%d/orders", s.base, user)
	assert.Equal(t, http.StatusOK, opsDo(t, nil, "GET", orders, "", nil).status)
	assert.Equal(t, http.StatusOK, opsDo(t, nil, "GET", orders, "", nil).status)
	limited := opsDo(t, nil, "GET", orders, "", nil)
	assert.Equal(t, http.StatusTooManyRequests, limited.status)
	assert.Equal(t, shopd.CodeRateLimited, limited.code())
	proxy.Down()
	down := opsDo(t, nil, "GET", s.base+"/products/42", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, down.status, "%s", down.body)
	proxy.Up()

	api := opsDo(t, nil, "GET", s.base+"/metrics", "", nil)
	assert.Equal(t, http.StatusNotFound, api.status, "the API does not show its metrics to its clients")
	assert.Equal(t, shopd.CodeNoRoute, api.code())

	scrape := opsDo(t, nil, "GET", "http://"+ln.Addr().String()+"/metrics", "", nil)
	require.Equal(t, http.StatusOK, scrape.status)
	body := string(scrape.body)
	for _, want := range []string{
		`shop_requests_total{op="GET /users/{id}/orders"} 3`,
		`shop_responses_total{op="GET /users/{id}/orders",status="2xx"} 2`,
		`shop_responses_total{op="GET /users/{id}/orders",status="4xx"} 1`,
		`shop_requests_shed_total{op="GET /users/{id}/orders"} 1`,
		`shop_responses_total{op="GET /products/{id}",status="5xx"} 1`,
		`shop_request_errors_total{op="GET /products/{id}"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, `shop_request_errors_total{op="GET /users/{id}/orders"}`, "a shed is not an error")
	assert.NotContains(t, body, fmt.Sprintf("/users/%d/", user), "no series per user")

	naive := opsStart(t, shopd.Config{Impl: shopd.Naive, DB: db.Config(), Gateway: gw.Client()}, time.Second)
	assert.Nil(t, naive.svc.AdminHandler(), "the naive wiring counts nothing")
	assert.ErrorIs(t, naive.svc.ServeAdmin(ctx, ln, time.Second), shop.ErrInvalidConfig)
}

// opsClientFrom returns an HTTP client whose connections come from ip (any
// of 127.0.0.0/8 is loopback on Linux), up to conns at once: to the
// service, a client of its own.
func opsClientFrom(ip string, conns int) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: dialer.DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
	}}
}

// greedyConns is how many connections the greedy client keeps busy, flat out.
const greedyConns = 64

// The polite client sends politeRequests, one at a time, about ten a second,
// while the greedy client floods; at most politeRefusedAtMost of them (5%)
// may be refused, of any kind: 429, 503, or no answer. With a limit per
// client none is, unless the machine running the test stalls a request past
// the service's deadline (500 ms for a page of orders), which no limit
// decides. Its requests, fewer than its burst and slower than its rate, are
// never above its own limit.
const (
	politeRequests      = 40
	politeEvery         = 100 * time.Millisecond
	politeRefusedAtMost = 2
)

// holdingTracer holds each query that looks up user (one argument, the
// user's id: the first query of a page of that user's orders) until release
// is closed, its request holding its turn and its connection meanwhile, as
// a slow request would, but for as long as the test wants; held counts the
// queries it has held. It passes every query on to next, if not nil.
type holdingTracer struct {
	next    pgx.QueryTracer
	user    int64
	release chan struct{}
	held    atomic.Int64
}

func (h *holdingTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if len(data.Args) == 1 && data.Args[0] == any(h.user) {
		h.held.Add(1)
		<-h.release
	}
	if h.next != nil {
		return h.next.TraceQueryStart(ctx, conn, data)
	}
	return ctx
}

func (h *holdingTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if h.next != nil {
		h.next.TraceQueryEnd(ctx, conn, data)
	}
}

// greedyFlood is a greedy client: greedyConns connections from 127.0.0.2,
// each asking url again as soon as it is answered, whatever the answer,
// until stop is called.
type greedyFlood struct {
	stopping atomic.Bool
	conns    sync.WaitGroup

	mu      sync.Mutex
	codes   map[int]int // answers by status; 0 counts the requests that got none
	refused int         // 429s and 503s
}

// startGreedy starts a greedy client against url.
func startGreedy(url string) *greedyFlood {
	f := &greedyFlood{codes: make(map[int]int)}
	client := opsClientFrom("127.0.0.2", greedyConns)
	for range greedyConns {
		f.conns.Go(func() {
			for !f.stopping.Load() {
				status := 0
				if resp, err := client.Get(url); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				f.mu.Lock()
				f.codes[status]++
				if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
					f.refused++
				}
				f.mu.Unlock()
			}
		})
	}
	return f
}

// refusals returns how many of the greedy client's requests were refused so
// far, with 429 or 503.
func (f *greedyFlood) refusals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// stop stops the greedy client once each connection's request at hand is
// answered, after calling release (which lets its held requests go), and
// returns its answers by status.
func (f *greedyFlood) stop(release func()) map[int]int {
	f.stopping.Store(true)
	release()
	f.conns.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.codes
}

// askPolitely has a polite client from 127.0.0.3 ask url politeRequests
// times, one request at a time, a request every politeEvery at most, and
// returns its answers by status, 0 counting the requests that got none.
func askPolitely(url string) map[int]int {
	client := opsClientFrom("127.0.0.3", 1)
	codes := make(map[int]int)
	tick := time.NewTicker(politeEvery)
	defer tick.Stop()
	for range politeRequests {
		<-tick.C
		status := 0
		if resp, err := client.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
		codes[status]++
	}
	return codes
}

// TestShopdGreedyClientCannotCrowdOutAPoliteOne runs a polite client while
// a greedy one floods, and holds the polite client's refusals, of any kind
// (429, 503, no answer), to at most politeRefusedAtMost of its
// politeRequests (5%).
//
// The greedy client asks from 64 connections flat out, and its requests are
// slow: each holds its turn and its connection, in the database, until the
// test lets go (holdingTracer), so that the flood holds every turn the
// service gives it, whatever the machine's speed. A rate per client alone
// does not bound that: turns held are the rate times how long each request
// takes, and a client within its rate takes every turn of the orders pool,
// while the rest of its burst fills the queue; everyone else is shed with
// 503. With the default limit per client, the greedy client is admitted
// shopd.ClientTurns of the pool's turns at once (2 of 4) and told 429 for
// the rest, and the polite client, from 127.0.0.3, starting once the
// flood is proven saturating (holding a turn and refused), finds a turn
// free each time. Without the limit, the same flood refuses more than the
// bound of the polite client's requests, and is never told 429.
func TestShopdGreedyClientCannotCrowdOutAPoliteOne(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	gw := gatewaytest.Start()
	t.Cleanup(gw.Close)
	greedyUser, _ := shop.Small.UserWithOrders(10)
	politeUser, _ := shop.Small.UserWithOrders(100)
	// The limits cmd/shopd sets by default (the client named by its
	// remote address), and none.
	for _, c := range []struct {
		limits     string
		clientRate float64
	}{{"default", 0}, {"off", -1}} {
		t.Run("limits="+c.limits, func(t *testing.T) {
			cfg := db.Config()
			hold := &holdingTracer{user: greedyUser, release: make(chan struct{})}
			hold.next, _ = cfg.ConnConfig.Tracer.(pgx.QueryTracer)
			cfg.ConnConfig.Tracer = hold
			var releaseOnce sync.Once
			release := func() { releaseOnce.Do(func() { close(hold.release) }) }
			s := opsStart(t, shopd.Config{Impl: shopd.Scalable, DB: cfg, Gateway: gw.Client(), ClientRate: c.clientRate}, 10*time.Second)
			t.Cleanup(release) // registered after the service: runs before its shutdown

			greedy := startGreedy(fmt.Sprintf("%s/users/%d/orders", s.base, greedyUser))
			var greedyCodes map[int]int
			t.Cleanup(func() {
				if greedyCodes == nil { // a failure before the polite client was done
					greedy.stop(release)
				}
			})
			opsEventually(t, func() bool { return hold.held.Load() > 0 && greedy.refusals() > 0 },
				"the greedy flood holds a turn and is refused")
			polite := askPolitely(fmt.Sprintf("%s/users/%d/orders", s.base, politeUser))
			held := hold.held.Load() // none ends before release
			greedyCodes = greedy.stop(release)
			refused := politeRequests - polite[http.StatusOK]
			t.Logf("limits %s: the greedy client held %d turns and was answered %v; the polite client, meanwhile, %v",
				c.limits, held, greedyCodes, polite)

			if c.clientRate < 0 {
				assert.Zero(t, greedyCodes[http.StatusTooManyRequests], "no limit per client, no 429")
				assert.Greater(t, refused, politeRefusedAtMost, "without the limit, the greedy client crowds the polite one out")
				return
			}
			assert.Positive(t, greedyCodes[http.StatusTooManyRequests], "the greedy client is told to slow down")
			turns := max(1, int(shopd.ClientTurns*float64(bulkheads.DefaultSizes.Orders)))
			assert.LessOrEqual(t, held, int64(turns), "the greedy client holds no more than its share of the orders pool's %d turns", bulkheads.DefaultSizes.Orders)
			assert.LessOrEqual(t, refused, politeRefusedAtMost,
				"the polite client, one request every %v while the greedy one floods, is refused at most %d times of %d", politeEvery, politeRefusedAtMost, politeRequests)
		})
	}
}
