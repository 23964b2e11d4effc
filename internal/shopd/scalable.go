package shopd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/time/rate"

	"works-vs-scales/internal/strictjson"
	bulkhead "works-vs-scales/scalable/bulkheads"
	"works-vs-scales/scalable/caching"
	breaker "works-vs-scales/scalable/circuitbreaker"
	observe "works-vs-scales/scalable/observability"
	"works-vs-scales/scalable/overload"
	"works-vs-scales/scalable/pagination"
	"works-vs-scales/scalable/validation"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// The scalable wiring's settings: each request's deadline is its workload's
// in bulkhead.DefaultTimeouts.
const (
	// ProductTTL is how long a product is served from the cache.
	ProductTTL = time.Minute
	// ProductCacheSize bounds the products cached.
	ProductCacheSize = 10_000
	// GatewayTimeout is how long each try of a charge may take.
	GatewayTimeout = 300 * time.Millisecond
	// BreakerThreshold failures in a row open the breaker, for BreakerOpenFor.
	BreakerThreshold = 5
	BreakerOpenFor   = 5 * time.Second
	// RelayEvery is how often the outbox relay sends the queued payments,
	// and ReconcileEvery how often the reconciler settles the stale pending
	// ones, both on a pool of their own of WorkerConns connections: the
	// background work never takes a request's connection.
	RelayEvery     = time.Second
	ReconcileEvery = time.Second
	WorkerConns    = 2
	// PaymentsAtOnce is how many payments the scalable wiring serves at
	// once. A payment holds a connection for two short statements only,
	// and waits on the gateway in between, for up to three of its
	// timeouts, holding none: what limits it is the gateway, not the pool.
	// Admitted by the pool's size, as the reads are, two payments would be
	// served at once, ten a second at 200 ms a charge.
	PaymentsAtOnce = 32
)

// scalable is the wiring the lessons build: validation first, keyset pages,
// a deadline per request, a pool per workload, admission control, a cache, a
// breaker, metrics.
type scalable struct {
	pools    bulkhead.Pools
	timeouts bulkhead.Timeouts
	cursors  *pagination.CursorCodec
	products *caching.Products
	payments *breaker.Payments
}

func newScalable(ctx context.Context, cfg Config) (*Service, error) {
	cursors, err := pagination.NewCursorCodec(cfg.CursorKey)
	if err != nil {
		return nil, fmt.Errorf("shopd: %w", err)
	}
	client, err := clientLimits(cfg)
	if err != nil {
		return nil, fmt.Errorf("shopd: %w", err)
	}
	db := cfg.DB
	if cfg.Tracer != nil {
		db = observe.TracePool(db, cfg.Tracer)
	}
	svc := &Service{impl: Scalable}
	fail := func(err error) (*Service, error) {
		svc.Close()
		return nil, fmt.Errorf("shopd: %w", err)
	}
	pools, err := bulkhead.OpenPools(ctx, db, bulkhead.DefaultSizes)
	if err != nil {
		return fail(err)
	}
	svc.close = append(svc.close, pools.Close)
	svc.pools = []*pgxpool.Pool{pools.Orders, pools.Search, pools.Payments}
	products, err := caching.NewProducts(pools.Orders, caching.Options{TTL: ProductTTL, MaxEntries: ProductCacheSize})
	if err != nil {
		return fail(err)
	}
	svc.close = append(svc.close, products.Close)
	guard, err := breaker.NewBreaker(BreakerThreshold, BreakerOpenFor)
	if err != nil {
		return fail(err)
	}
	payments, err := breaker.NewPayments(pools.Payments, cfg.Gateway, GatewayTimeout, guard)
	if err != nil {
		return fail(err)
	}
	// The payments the service takes are finished in the background (lesson
	// 10's relay sends the queued ones, its reconciler settles those whose
	// maker died), behind the same breaker, on a pool of their own (lesson
	// 11).
	workerDB := cfg.DB.Copy()
	workerDB.MaxConns = WorkerConns
	workerPool, err := pgxpool.NewWithConfig(ctx, workerDB)
	if err != nil {
		return fail(fmt.Errorf("open the background work's pool: %w", err))
	}
	svc.close = append(svc.close, workerPool.Close)
	relay, err := breaker.NewRelay(workerPool, cfg.Gateway, GatewayTimeout, guard)
	if err != nil {
		return fail(err)
	}
	reconciler, err := breaker.NewReconciler(workerPool, cfg.Gateway, GatewayTimeout, guard)
	if err != nil {
		return fail(err)
	}
	logWorkError := func(err error) { slog.Warn("background work", "err", err) }
	svc.workers = []func(context.Context) error{
		func(ctx context.Context) error { return relay.Run(ctx, RelayEvery, logWorkError) },
		func(ctx context.Context) error { return reconciler.Run(ctx, ReconcileEvery, logWorkError) },
	}

	s := &scalable{pools: pools, timeouts: bulkhead.DefaultTimeouts, cursors: cursors, products: products, payments: payments}
	// Each route's requests, statuses, sheds, errors and latencies are
	// counted under its pattern, never its URL (lesson 15), with the Go
	// runtime's and the process's own, on the admin handler; each pool
	// admits what it can serve in time, whichever routes ask, and each
	// client its share of each route (lesson 16).
	metrics := observe.NewMetrics()
	metrics.Registry().MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	admitted, err := scalableRoutes(pools, client, s.orders, s.product, s.pay)
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	for _, r := range admitted {
		h := metrics.Instrument(r.pattern, r.handler)
		if cfg.Tracer != nil {
			// Outermost, so that a refused request has its span
			// too (lesson 15).
			h = observe.TraceRequests(cfg.Tracer, r.pattern, h)
		}
		mux.Handle(r.pattern, h)
	}
	admin := http.NewServeMux()
	admin.Handle("GET /metrics", metrics.Handler())
	svc.handler = limitBody(routes(mux))
	svc.admin = routes(admin)
	return svc, nil
}

// route is one of the scalable wiring's routes: its pattern and its
// handler, behind admission control.
type route struct {
	pattern string
	handler http.Handler
}

// scalableRoutes returns the scalable wiring's routes, orders, product and
// pay each behind the admission control of the pool its requests hold
// (lesson 16), with client's limit per client on each route and, when it
// sets one, ClientTurns of each admission's turns to a client at once,
// whichever routes it asks. The orders and the products both read from
// pools.Orders, so they share one admission: as many requests at once, of
// the two together, as that pool has connections (admitted apart, twice as
// many would wait inside the pool, past their deadlines). The payments have
// their own, of PaymentsAtOnce.
func scalableRoutes(pools bulkhead.Pools, client clientLimit, orders, product, pay http.HandlerFunc) ([]route, error) {
	withClient := func(limits overload.Limits) overload.Limits {
		limits.PerClient, limits.Burst, limits.Client = client.rate, client.burst, client.name
		if client.rate > 0 {
			limits.PerClientAtOnce = max(1, int(ClientTurns*float64(limits.Concurrency)))
		}
		return limits
	}
	reads, err := overload.NewAdmission(withClient(overload.LimitsFor(pools.Orders)))
	if err != nil {
		return nil, fmt.Errorf("admission of the orders pool: %w", err)
	}
	payLimits := overload.LimitsFor(pools.Payments)
	payLimits.Concurrency, payLimits.Queue = PaymentsAtOnce, 4*PaymentsAtOnce
	payments, err := overload.NewAdmission(withClient(payLimits))
	if err != nil {
		return nil, fmt.Errorf("admission of the payments: %w", err)
	}
	var admitted []route
	for _, r := range []struct {
		pattern   string
		handle    http.HandlerFunc
		admission *overload.Admission
	}{
		{"GET /users/{id}/orders", orders, reads},
		{"GET /products/{id}", product, reads},
		{"POST /payments", pay, payments},
	} {
		h, err := admit(r.handle, r.admission)
		if err != nil {
			return nil, err
		}
		admitted = append(admitted, route{r.pattern, h})
	}
	return admitted, nil
}

// clientLimit is the limit per client of the scalable wiring's routes.
type clientLimit struct {
	rate  rate.Limit
	burst int
	name  func(*http.Request) string // nil: the remote address's host
}

// clientLimits returns the limit per client cfg asks for, its defaults
// filled in, or an error wrapping shop.ErrInvalidConfig.
func clientLimits(cfg Config) (clientLimit, error) {
	switch {
	case math.IsNaN(cfg.ClientRate) || math.IsInf(cfg.ClientRate, 0):
		return clientLimit{}, fmt.Errorf("client rate %v: want a number of requests a second: %w", cfg.ClientRate, shop.ErrInvalidConfig)
	case cfg.ClientRate < 0:
		return clientLimit{}, nil // no limit per client
	case cfg.ClientRate == 0:
		cfg.ClientRate, cfg.ClientBurst = DefaultClientRate, DefaultClientBurst
	case cfg.ClientBurst < 1:
		return clientLimit{}, fmt.Errorf("client rate %v with a burst of %d: want at least 1: %w", cfg.ClientRate, cfg.ClientBurst, shop.ErrInvalidConfig)
	}
	limit := clientLimit{rate: rate.Limit(cfg.ClientRate), burst: cfg.ClientBurst}
	if cfg.ClientHeader != "" {
		if !validHeaderName(cfg.ClientHeader) {
			return clientLimit{}, fmt.Errorf("client header %s: not a header name: %w", shop.Quote(cfg.ClientHeader), shop.ErrInvalidConfig)
		}
		limit.name = clientFromHeader(cfg.ClientHeader)
	}
	return limit, nil
}

// clientFromHeader returns a function naming a request's client by the last
// comma-separated value of header (the hop the trusted proxy added), an IP
// address with or without a port; or, for a request without one, by its
// remote address. An IPv6 address names its /56 (overload.ClientName).
func clientFromHeader(header string) func(*http.Request) string {
	return func(r *http.Request) string {
		values := r.Header.Values(header)
		if len(values) > 0 {
			last := values[len(values)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if name := overload.ClientName(strings.TrimSpace(last)); name != "" {
				return name
			}
		}
		if name := overload.ClientName(r.RemoteAddr); name != "" {
			return name
		}
		return r.RemoteAddr
	}
}

// validHeaderName reports whether name is an HTTP header name: one or more
// of RFC 9110's token characters.
func validHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return name != ""
}

// limitBody reads each request's body, at most MaxBodyBytes of it, before
// the request is admitted, so that a client sending its body slowly, or
// never finishing it, holds its own connection until ReadTimeout and never
// one of the places admission control keeps for the requests it serves
// (40 stalled payments took all PaymentsAtOnce of them, and every other
// payment was shed with 503). The handler reads the body from memory, or
// the error reading it gave: *http.MaxBytesError for one too large.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var rest io.Reader = bytes.NewReader(body)
		if err != nil {
			rest = io.MultiReader(rest, errReader{err})
		}
		r.Body = io.NopCloser(rest)
		next.ServeHTTP(w, r)
	})
}

// errReader fails every read with its error.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// orders serves a page of the user's orders: the user, then
// pagination.ListUserOrdersAfter from the cursor, two queries whatever the
// user's history, within the orders deadline. Every parameter is checked
// before the database is asked anything.
func (s *scalable) orders(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	limit, after, err := pageRequest(r, s.cursors, id, MaxOrdersPage)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeouts.Orders)
	defer cancel()
	user, err := userByID(ctx, s.pools.Orders, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	orders, next, err := pagination.ListUserOrdersAfter(ctx, s.pools.Orders, id, after, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	page := OrdersPage{User: user, Orders: nonNil(orders)}
	if next != nil {
		page.NextCursor = s.cursors.Encode(*next)
	}
	writeJSON(w, http.StatusOK, page)
}

// pageRequest returns the page the query asks for: limit (DefaultPageSize
// if absent, at most maxSize) and the position after which it starts (nil
// for the first page), its token checked by cursors, or an error wrapping
// shop.ErrInvalidPage.
func pageRequest(r *http.Request, cursors *pagination.CursorCodec, userID int64, maxSize int) (int, *pagination.Cursor, error) {
	// URL.Query drops what it cannot parse (limit=%zz, a;b): refuse it.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, nil, fmt.Errorf("orders of user %d: query %s: %w", userID, shop.Quote(r.URL.RawQuery), shop.ErrInvalidPage)
	}
	for _, name := range []string{"limit", "cursor"} {
		if n := len(q[name]); n > 1 {
			return 0, nil, fmt.Errorf("orders of user %d: %s given %d times: %w", userID, name, n, shop.ErrInvalidPage)
		}
	}
	limit := DefaultPageSize
	if text := q.Get("limit"); text != "" {
		n, err := strconv.Atoi(text)
		if err != nil {
			return 0, nil, fmt.Errorf("limit %s: not a number: %w", shop.Quote(text), shop.ErrInvalidPage)
		}
		limit = n
	}
	// maxSize is shop.MaxPageSize or less: one check, which names the
	// wiring's own bound.
	if limit < 1 || limit > maxSize {
		return 0, nil, fmt.Errorf("orders of user %d: %w: page size %d: want 1 to %d", userID, shop.ErrInvalidPage, limit, maxSize)
	}
	token := q.Get("cursor")
	if token == "" {
		return limit, nil, nil
	}
	c, err := cursors.Decode(token)
	if err != nil {
		return 0, nil, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	return limit, &c, nil
}

// userByID returns the user, or an error wrapping shop.ErrUserNotFound.
func userByID(ctx context.Context, db *pgxpool.Pool, id int64) (shop.User, error) {
	// Uses users_pkey.
	const userQuery = `SELECT id, name, email, phone, created_at FROM users WHERE id = $1`
	var u shop.User
	err := db.QueryRow(ctx, userQuery, id).Scan(&u.ID, &u.Name, &u.Email, &u.Phone, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return shop.User{}, fmt.Errorf("user %d: %w", id, shop.ErrUserNotFound)
	}
	if err != nil {
		return shop.User{}, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// product serves a product through the in-process cache (lesson 6).
func (s *scalable) product(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeouts.Orders)
	defer cancel()
	p, err := s.products.Get(ctx, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// pay reads the payment strictly (decodeJSON) and checks it with
// validation.ParsePayment (lesson 8), then charges it once per
// Idempotency-Key behind the breaker, queueing it while the gateway is down
// (lessons 9 and 10), within the payments deadline. A payment the gateway
// declines, now or before under the same key, is a 402: nothing charged.
func (s *scalable) pay(w http.ResponseWriter, r *http.Request) {
	var req gateway.ChargeRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, fmt.Errorf("payment: %w", err))
		return
	}
	// ParsePayment reads a payment as typed: the amount as text in units.
	checked, err := validation.ParsePayment(shop.PaymentRequest{
		UserID:   strconv.FormatInt(req.UserID, 10),
		Amount:   centsText(req.AmountCents),
		Currency: req.Currency,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	req.UserID, req.AmountCents, req.Currency = checked.UserID, checked.AmountCents, checked.Currency
	keys := r.Header.Values(gateway.IdempotencyKeyHeader)
	if len(keys) > 1 {
		writeError(w, r, fmt.Errorf("%d Idempotency-Key headers: want one: %w", len(keys), errBadKey))
		return
	}
	key := r.Header.Get(gateway.IdempotencyKeyHeader)
	if err := checkPaymentText(key, req.Reference); err != nil {
		writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeouts.Payments)
	defer cancel()
	p, err := s.payments.Pay(ctx, key, req)
	if err == nil && p.Status == shop.PaymentFailed {
		err = fmt.Errorf("payment %d of key %s: %w", p.ID, shop.Quote(key), errPaymentFailed)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// decodeJSON reads the request's body into v strictly: declared
// application/json (UTF-8, not encoded) or an error wrapping errMediaType;
// one JSON object, its members named exactly as v's json tags, each once,
// or an error wrapping errMalformedBody (strictjson). encoding/json alone
// would take "AMOUNT_CENTS" for amount_cents and the last of two, where a
// proxy or a log in front may have read the first.
func decodeJSON(r *http.Request, v any) error {
	if err := checkJSONContent(r.Header); err != nil {
		return err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return fmt.Errorf("%w: reading it: %w", errMalformedBody, err)
	}
	if err := strictjson.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %w", errMalformedBody, err)
	}
	return nil
}

// checkJSONContent returns an error wrapping errMediaType unless the
// header declares one Content-Type, application/json, with no parameter
// but charset=utf-8, and no Content-Encoding but identity.
func checkJSONContent(h http.Header) error {
	types := h.Values("Content-Type")
	if len(types) != 1 {
		return fmt.Errorf("%d Content-Type headers: %w", len(types), errMediaType)
	}
	mediaType, params, err := mime.ParseMediaType(types[0])
	if err != nil || mediaType != "application/json" {
		return fmt.Errorf("Content-Type %s: %w", shop.Quote(types[0]), errMediaType)
	}
	for name, value := range params {
		if name != "charset" || !strings.EqualFold(value, "utf-8") {
			return fmt.Errorf("Content-Type %s: %w (UTF-8)", shop.Quote(types[0]), errMediaType)
		}
	}
	for _, encoding := range h.Values("Content-Encoding") {
		if !strings.EqualFold(strings.TrimSpace(encoding), "identity") {
			return fmt.Errorf("Content-Encoding %s: %w, not encoded", shop.Quote(encoding), errMediaType)
		}
	}
	return nil
}

// centsText writes cents as units with two decimals: 1250 is "12.50",
// -5 is "-0.05".
func centsText(cents int64) string {
	sign, abs := "", uint64(cents)
	if cents < 0 {
		sign, abs = "-", uint64(-(cents+1))+1
	}
	return fmt.Sprintf("%s%d.%02d", sign, abs/100, abs%100)
}
