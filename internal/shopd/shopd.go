// Package shopd is the shop as an HTTP service: the lessons' packages wired
// behind net/http, in two wirings. The naive wiring serves a user's orders
// with naive/nplusone (2+N queries, every order at once) and takes payments
// with naive/circuitbreaker (retries, no breaker); the scalable one validates every
// input, pages with scalable/pagination's keyset, answers within a deadline
// from the bulkhead pools of scalable/bulkheads, admits what each pool can
// serve and a fair share per client with scalable/overload, serves products
// through scalable/caching, takes payments behind scalable/circuitbreaker's circuit
// breaker and outbox, runs that lesson's relay and reconciler in the
// background so that every payment ends charged and recorded or refused and
// uncharged, counts every route's requests, statuses, sheds, errors and
// latencies with scalable/observability on an admin handler of its own, and, given
// a tracer, traces each request and its queries.
//
// The handlers hold no logic of their own but parsing, mapping errors to
// statuses, and encoding JSON: what each wiring does is what its lessons
// teach. cmd/shopd runs it; cmd/load measures it.
package shopd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	bulkhead "works-vs-scales/scalable/bulkheads"
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

// MaxOrdersPage is the largest page of orders the scalable wiring serves; a
// larger limit gets 400 before the database is asked anything. Its orders'
// deadline (bulkhead.DefaultTimeouts) is sized for pages of this size: a page
// of shop.MaxPageSize orders, ten times the work, could miss it on a busy
// machine and be shed with 503, an answer that hangs on the machine's load
// rather than on the request. The page wiring, with no deadline, serves up to
// shop.MaxPageSize.
const MaxOrdersPage = 100

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
	// ClientRate is how many requests a second one client is served on
	// each route of the scalable wiring, in bursts of up to ClientBurst,
	// and no more of them at once than ClientTurns of the turns of each
	// pool's admission control; a client above either gets 429 and when to
	// come back (lesson 16). 0 means DefaultClientRate and
	// DefaultClientBurst; a negative rate sets no limit per client.
	// Ignored by the naive wirings.
	ClientRate  float64
	ClientBurst int
	// ClientHeader, if not empty, names the header that names a request's
	// client: its last comma-separated value, the one the proxy in front
	// of the service appended (X-Forwarded-For) or set (X-Real-IP), an IP
	// address with or without a port; a request whose value is neither is
	// counted as its remote address's. Set it only behind a proxy that
	// sets the header on every request: a client can send any header, and
	// one that names itself anew each time has no limit. Empty: the client
	// is the host of the request's remote address.
	ClientHeader string
}

// The limit per client the scalable wiring sets when Config sets none: a
// person's browser or app asks a route a few times a second at most, and a
// program that asks more is told to slow down before it takes the turns of
// everyone else.
const (
	DefaultClientRate  = 20
	DefaultClientBurst = 40
)

// ClientTurns is the share of a pool's turns (its admission control's
// Concurrency) that one client's requests may hold at once, served or
// waiting, while a limit per client is set: at least one turn. A rate alone
// bounds how often a client asks, not how many turns it holds, which is its
// rate times how long each request takes: a client within its rate whose
// requests are slow would take every turn, and the others would be shed
// with 503. Held to half, one client leaves the others the other half.
const ClientTurns = 0.5

// Service is the shop's HTTP API in one wiring, with the pools it opened
// and the work it runs in the background while it serves.
type Service struct {
	impl    string
	handler http.Handler
	admin   http.Handler                  // nil for a wiring that has no metrics
	workers []func(context.Context) error // run by Serve until it shuts down
	pools   []*pgxpool.Pool
	close   []func()

	startWork sync.Once
	work      context.Context    // the workers', cancelled to stop them
	stopWork  context.CancelFunc // by Serve's shutdown, or by Close
	running   sync.WaitGroup     // the workers Serve started
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
	var svc *Service
	var err error
	switch cfg.Impl {
	case Naive, Join, Page:
		svc, err = newNaive(ctx, cfg)
	case Scalable:
		svc, err = newScalable(ctx, cfg)
	default:
		return nil, fmt.Errorf("shopd: %s (want one of %s): %w", shop.Quote(cfg.Impl), strings.Join(Impls(), ", "), ErrUnknownImpl)
	}
	if err != nil {
		return nil, err
	}
	svc.work, svc.stopWork = context.WithCancel(context.Background())
	return svc, nil
}

// Conns returns the most connections the service New(cfg) makes would hold
// on the database at once: the scalable wiring's bulkheads and its
// background work's pool (bulkhead.DefaultSizes and WorkerConns, whatever
// cfg.DB says), or the one pool the naive wirings open as cfg.DB configures
// it. A room's budget of connections a trainee (lessons/TRAINER.md) is
// weighed against it.
func Conns(cfg Config) int32 {
	if cfg.Impl == Scalable {
		s := bulkhead.DefaultSizes
		return s.Orders + s.Search + s.Payments + WorkerConns
	}
	if cfg.DB == nil {
		return 0
	}
	return cfg.DB.MaxConns
}

// Impl returns the wiring the service runs.
func (s *Service) Impl() string { return s.impl }

// Handler returns the service's routes.
func (s *Service) Handler() http.Handler { return s.handler }

// AdminHandler returns what the service shows its operators, apart from its
// API: GET /metrics, in Prometheus's text format (the routes' requests,
// responses by status class, sheds, errors and latencies, the Go runtime's
// and the process's). It is nil for the naive wirings, which count nothing.
// Serve it on an address of its own (ServeAdmin), reachable from the
// monitoring only, never on the API's: what the service counts is not its
// clients' business.
func (s *Service) AdminHandler() http.Handler { return s.admin }

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

// Close stops the background work Serve started and waits for it to finish
// the payment at hand, then closes the service's pools and what else New
// opened. It does not wait for requests: Serve drains them first.
func (s *Service) Close() {
	if s.stopWork != nil {
		s.stopWork()
	}
	s.running.Wait()
	for i := len(s.close) - 1; i >= 0; i-- {
		s.close[i]()
	}
}

// Serve serves the service's API on ln, and runs its background work (the
// scalable wiring's outbox relay and reconciler of stale payments, started
// by the first Serve), until ctx is done; then it shuts down gracefully: it
// stops accepting, lets the requests in flight finish, then stops the
// background work, which finishes the payment at hand, all within grace, and
// returns. It returns nil after a graceful shutdown, or the error that
// stopped the server or the shutdown. No listener, or a Service not made by
// New, is an error wrapping shop.ErrInvalidConfig.
func (s *Service) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	if err := s.checkServe(ln); err != nil {
		return err
	}
	s.startWork.Do(func() {
		for _, w := range s.workers {
			s.running.Go(func() {
				if err := w(s.work); err != nil {
					slog.Error("background work stopped", "err", err)
				}
			})
		}
	})
	return serveHTTP(ctx, s.handler, ln, grace, func(shutdown context.Context) error {
		// The requests are answered: no payment is queued after this.
		s.stopWork()
		done := make(chan struct{})
		go func() { s.running.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-shutdown.Done():
			return fmt.Errorf("shopd: background work not stopped within the grace: %w", shutdown.Err())
		}
	})
}

// ServeAdmin serves AdminHandler on ln until ctx is done, then shuts it
// down gracefully within grace, as Serve does. It refuses a service without
// one, as Serve refuses no listener.
func (s *Service) ServeAdmin(ctx context.Context, ln net.Listener, grace time.Duration) error {
	if err := s.checkServe(ln); err != nil {
		return err
	}
	if s.admin == nil {
		return fmt.Errorf("shopd: the %s wiring has no admin handler: %w", s.impl, shop.ErrInvalidConfig)
	}
	return serveHTTP(ctx, s.admin, ln, grace, nil)
}

// checkServe returns an error wrapping shop.ErrInvalidConfig for no
// listener, and for a Service New did not make: an http.Server with no
// handler serves http.DefaultServeMux.
func (s *Service) checkServe(ln net.Listener) error {
	switch {
	case s == nil || s.handler == nil || s.stopWork == nil:
		return fmt.Errorf("shopd: a service not made by New: %w", shop.ErrInvalidConfig)
	case ln == nil:
		return fmt.Errorf("shopd: serve the %s wiring on no listener: %w", s.impl, shop.ErrInvalidConfig)
	}
	return nil
}

// serveHTTP serves h on ln until ctx is done, then shuts the server down
// within grace: it stops accepting and lets the requests in flight finish;
// then, if drain is not nil, it calls drain with what is left of the grace.
func serveHTTP(ctx context.Context, h http.Handler, ln net.Listener, grace time.Duration, drain func(context.Context) error) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		if drain != nil {
			shutdown, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			err = errors.Join(err, drain(shutdown))
		}
		return fmt.Errorf("shopd: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
		if drain != nil {
			err = errors.Join(err, drain(shutdown))
		}
		return fmt.Errorf("shopd: shut down within %v: %w", grace, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shopd: serve on %s: %w", ln.Addr(), err)
	}
	if drain != nil {
		if err := drain(shutdown); err != nil {
			return err
		}
	}
	return nil
}
