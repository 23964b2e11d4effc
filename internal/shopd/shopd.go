// Package shopd is the shop as an HTTP service: the lessons' packages wired
// behind net/http, in two wirings. The naive wiring serves a user's orders
// with naive/nplusone (2+N queries, every order at once) and takes payments
// with naive/circuitbreaker (retries, no breaker); the scalable one validates every
// input, pages with scalable/pagination's keyset, answers within a deadline
// from the bulkhead pools of scalable/bulkheads, serves products through
// scalable/caching, takes payments behind scalable/circuitbreaker's circuit
// breaker and outbox, counts every route's requests, errors and latencies on
// GET /metrics with scalable/observability, and, given a tracer, traces each request
// and its queries.
//
// The handlers hold no logic of their own but parsing, mapping errors to
// statuses, and encoding JSON: what each wiring does is what its lessons
// teach. cmd/shopd runs it; cmd/load measures it.
package shopd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// The wirings New accepts, each the one before with more of the lessons, to
// measure how far each moves the service's knee. Join is the naive wiring
// with lesson 1's fix alone: every order of the user, in one query that joins
// them. Page is Join with lesson 2's keyset pages, as the scalable wiring
// serves them, and nothing else of it: one pool, no deadline, no admission
// control, no cache. Scalable is every lesson.
const (
	Naive    = "naive"
	Join     = "join"
	Page     = "page"
	Scalable = "scalable"
)

// Impls returns the wirings New accepts, from the naive to the scalable.
func Impls() []string { return []string{Naive, Join, Page, Scalable} }

// MaxBodyBytes is the largest request body the scalable wiring reads; a
// larger one gets 413. A payment's JSON is about a hundred bytes.
const MaxBodyBytes = 4 << 10

// DefaultPageSize is the page the scalable wiring serves when the request
// names no limit.
const DefaultPageSize = 20

// The server's timeouts (both wirings): how long a client may take to send
// its request, how long the server may take to write the answer, and how long
// an idle keep-alive connection stays open.
const (
	ReadTimeout  = 5 * time.Second
	WriteTimeout = 10 * time.Second
	IdleTimeout  = 60 * time.Second
)

// ErrUnknownImpl is returned by New for a wiring not among Impls.
var ErrUnknownImpl = fmt.Errorf("unknown wiring: %w", shop.ErrInvalidConfig)

// Config configures a Service.
type Config struct {
	// Impl picks the wiring: Naive, Join, Page or Scalable.
	Impl string
	// DB configures the connections to the shop's database. The naive wiring
	// opens one pool of it as configured; the scalable one opens the bulkhead
	// pools (bulkhead.DefaultSizes).
	DB *pgxpool.Config
	// Gateway charges the payments.
	Gateway *gateway.Client
	// CursorKey signs the scalable wiring's page tokens: at least
	// pagination.MinCursorKeySize bytes. Ignored by the Naive and Join
	// wirings.
	CursorKey []byte
	// Tracer, if not nil, traces the scalable wiring's requests: a span
	// for each request, named after its route, with a child span for each
	// of its queries (scalable/observability's QueryTracer, after any tracer DB
	// has). Its sampler decides which are recorded; every request's log
	// records carry its trace id. Nil traces nothing. Ignored by the naive
	// wirings.
	Tracer trace.TracerProvider
}

// Service is the shop's HTTP API in one wiring, with the pools it opened.
type Service struct {
	impl    string
	handler http.Handler
	pools   []*pgxpool.Pool
	close   []func()
}

// New opens the pools cfg asks for and returns the service, or an error
// wrapping shop.ErrInvalidConfig for a configuration that cannot work.
// Close releases what it opened.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, fmt.Errorf("shopd: no database configuration: %w", shop.ErrInvalidConfig)
	}
	if cfg.Gateway == nil {
		return nil, fmt.Errorf("shopd: no payment gateway: %w", shop.ErrInvalidConfig)
	}
	switch cfg.Impl {
	case Naive, Join, Page:
		return newNaive(ctx, cfg)
	case Scalable:
		return newScalable(ctx, cfg)
	default:
		return nil, fmt.Errorf("shopd: %s (want one of %s): %w", shop.Quote(cfg.Impl), strings.Join(Impls(), ", "), ErrUnknownImpl)
	}
}

// Impl returns the wiring the service runs.
func (s *Service) Impl() string { return s.impl }

// Handler returns the service's routes.
func (s *Service) Handler() http.Handler { return s.handler }

// PoolStats returns the statistics of the service's pools, added up: how
// many connections are in use, and how long requests waited for one.
func (s *Service) PoolStats() PoolStats {
	var st PoolStats
	for _, p := range s.pools {
		ps := p.Stat()
		st.MaxConns += ps.MaxConns()
		st.AcquiredConns += ps.AcquiredConns()
		st.AcquireCount += ps.AcquireCount()
		st.AcquireDuration += ps.AcquireDuration()
		st.EmptyAcquireCount += ps.EmptyAcquireCount()
	}
	return st
}

// PoolStats is what pgxpool.Stat says, over every pool of a service.
type PoolStats struct {
	MaxConns          int32
	AcquiredConns     int32
	AcquireCount      int64         // connections handed out so far
	AcquireDuration   time.Duration // time spent waiting for them so far
	EmptyAcquireCount int64         // how many of them had to wait
}

// Close closes the service's pools and what else New opened. It does not
// wait for requests: Serve drains them first.
func (s *Service) Close() {
	for i := len(s.close) - 1; i >= 0; i-- {
		s.close[i]()
	}
}

// Serve serves the service on ln until ctx is done, then shuts the server
// down gracefully: it stops accepting, lets the requests in flight finish
// within grace, and returns. It returns nil after a graceful shutdown, or
// the error that stopped the server.
func (s *Service) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("shopd: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("shopd: shut down within %v: %w", grace, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shopd: serve on %s: %w", ln.Addr(), err)
	}
	return nil
}
