package overload

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"works-vs-scales/shop"
)

// Limits says how much a server takes on: how many requests it serves at
// once, how many may wait for a turn and for how long, and how fast, and
// how many at once, one client may ask.
type Limits struct {
	// Concurrency is how many requests are served at once. A server
	// whose requests each hold a connection serves no more at once than
	// its pool has connections: its size is the natural limit.
	Concurrency int
	// Queue is how many requests may wait for a turn; one more is refused
	// at once. 0 refuses whatever cannot be served now.
	Queue int
	// QueueTimeout is how long a request waits for a turn before it is
	// refused: a small part of what its client will wait in all, so that
	// a request served is served in time.
	QueueTimeout time.Duration
	// RetryAfter is what a request refused for want of capacity is told
	// to wait before it tries again, in whole seconds, at least 1.
	RetryAfter time.Duration
	// PerClient is the rate of requests, per second, that one client is
	// served, with bursts of up to Burst; 0 sets no such limit. A client
	// above it gets 429 and how long to wait.
	PerClient rate.Limit
	Burst     int
	// PerClientAtOnce is how many of one client's requests are admitted at
	// once, served or waiting for a turn, across every handler of an
	// Admission; one more gets 429 at once, and costs no token of the
	// client's rate. 0 sets no such limit. A rate bounds how often a
	// client asks, not how many turns it holds: that is its rate times
	// how long each request takes (Little's law), so a client within its
	// rate whose requests are slow takes every turn, and everyone else
	// waits in the queue and is refused with 503. Below Concurrency, it
	// leaves the other clients turns that no one client can take.
	PerClientAtOnce int
	// Client names a request's client; nil means the host of its remote
	// address, as ClientName names it (an IPv6 host by its /56).
	Client func(*http.Request) string
	// MaxClients is how many clients' rates are remembered at once; 0
	// means 10,000. A client forgotten starts again with a full burst.
	MaxClients int
}

// LimitsFor returns the limits of a server whose requests each hold one of
// db's connections for a query: as many at once as the pool has connections;
// four times as many waiting, to absorb a burst, none for more than 100 ms;
// no limit per client.
func LimitsFor(db *pgxpool.Pool) Limits {
	size := int(db.Config().MaxConns)
	return Limits{Concurrency: size, Queue: 4 * size, QueueTimeout: 100 * time.Millisecond, RetryAfter: time.Second}
}

// Validate returns an error wrapping shop.ErrInvalidConfig if the limits
// cannot be kept: no request served at once, a negative queue, timeout,
// rate, burst, number at once or client count, or a rate per client with no
// burst.
func (l Limits) Validate() error {
	var problem string
	switch {
	case l.Concurrency < 1:
		problem = fmt.Sprintf("Concurrency %d: at least one request at once", l.Concurrency)
	case l.Queue < 0:
		problem = fmt.Sprintf("Queue %d is negative", l.Queue)
	case l.QueueTimeout < 0 || l.RetryAfter < 0:
		problem = fmt.Sprintf("QueueTimeout %v, RetryAfter %v: negative", l.QueueTimeout, l.RetryAfter)
	case l.Queue > 0 && l.QueueTimeout == 0:
		problem = fmt.Sprintf("Queue %d with no QueueTimeout: a request would wait for ever", l.Queue)
	case l.PerClient < 0 || math.IsNaN(float64(l.PerClient)):
		problem = fmt.Sprintf("PerClient %v is negative", l.PerClient)
	case l.PerClient > 0 && l.Burst < 1:
		problem = fmt.Sprintf("PerClient %v with Burst %d: at least 1", l.PerClient, l.Burst)
	case l.PerClientAtOnce < 0:
		problem = fmt.Sprintf("PerClientAtOnce %d is negative", l.PerClientAtOnce)
	case l.MaxClients < 0:
		problem = fmt.Sprintf("MaxClients %d is negative", l.MaxClients)
	default:
		return nil
	}
	return fmt.Errorf("admission limits: %s: %w", problem, shop.ErrInvalidConfig)
}

// Admit returns next behind admission control (no next is an error wrapping
// shop.ErrInvalidConfig, as are limits that Validate refuses): a request is served at once
// if fewer than limits.Concurrency are being served, waits for a turn if
// fewer than limits.Queue are waiting, and is otherwise refused at once with
// 503 Service Unavailable and a Retry-After header; so is one that waited
// limits.QueueTimeout without a turn. A client above its rate gets 429 Too
// Many Requests, with Retry-After saying when its next request would pass;
// so does a client with limits.PerClientAtOnce requests admitted already,
// told to come back after limits.RetryAfter.
//
// A refusal costs the server microseconds and tells the client the truth at
// once; an accepted request that waits longer than its client is worth
// nothing, and costs a goroutine, a place in the pool's queue and, when it
// is finally served, a connection's time.
//
// Admit gives next turns of its own; handlers whose requests hold
// connections of one pool share theirs through one [Admission].
func Admit(next http.Handler, limits Limits) (http.Handler, error) {
	a, err := NewAdmission(limits)
	if err != nil {
		return nil, err
	}
	return a.Admit(next)
}

// An Admission is admission control that several handlers share: its turns
// and its queue are counted across every handler it admits to, so that
// routes whose requests each hold a connection of one pool are served,
// together, no more at once than the pool has connections (two routes
// admitted apart, each as many as the pool's size, would let twice as many
// requests queue inside the pool, past their deadlines). A client's rate
// is each handler's own; how many of its requests are admitted at once is
// counted across them all, as the turns are. It is safe for concurrent use.
type Admission struct {
	limits  Limits
	turns   *semaphore.Weighted // a weight per request being served; FIFO for those waiting
	waiting atomic.Int64        // requests waiting for a turn

	atOnceMu sync.Mutex
	atOnce   map[string]int // each client's requests admitted, served or waiting; none at 0
}

// NewAdmission returns the admission control of limits, or an error
// wrapping shop.ErrInvalidConfig for limits that Validate refuses.
func NewAdmission(limits Limits) (*Admission, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	if limits.MaxClients == 0 {
		limits.MaxClients = 10_000
	}
	if limits.Client == nil {
		limits.Client = remoteHost
	}
	return &Admission{limits: limits, turns: semaphore.NewWeighted(int64(limits.Concurrency)), atOnce: make(map[string]int)}, nil
}

// Admit returns next behind a's admission control, as [Admit] does, its
// turns and queue shared with every other handler a admits to (no next, or
// an a not made by NewAdmission, is an error wrapping shop.ErrInvalidConfig).
func (a *Admission) Admit(next http.Handler) (http.Handler, error) {
	if a == nil || a.turns == nil {
		return nil, fmt.Errorf("admission: not made by NewAdmission: %w", shop.ErrInvalidConfig)
	}
	if next == nil {
		return nil, fmt.Errorf("admission: no handler to admit requests to: %w", shop.ErrInvalidConfig)
	}
	return &admitted{Admission: a, next: next, clients: make(map[string]*rate.Limiter)}, nil
}

// admitted is one handler behind an Admission.
type admitted struct {
	*Admission
	next http.Handler

	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

// ServeHTTP serves r if it gets a turn: at once, or after waiting in the
// queue for at most QueueTimeout. Otherwise it refuses r at once.
func (a *admitted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.limits.PerClient > 0 || a.limits.PerClientAtOnce > 0 {
		client := a.limits.Client(r)
		if !a.enter(client) {
			refuse(w, http.StatusTooManyRequests, a.limits.RetryAfter, "too many requests at once from this client")
			return
		}
		// Deferred first, so run last: after the turn is given back, so
		// that a client never holds more turns than it has requests in.
		defer a.leave(client)
		if wait, ok := a.allow(client); !ok {
			refuse(w, http.StatusTooManyRequests, wait, "too many requests from this client")
			return
		}
	}
	if !a.turns.TryAcquire(1) {
		if a.waiting.Add(1) > int64(a.limits.Queue) {
			a.waiting.Add(-1)
			refuse(w, http.StatusServiceUnavailable, a.limits.RetryAfter, "the server is at capacity")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.limits.QueueTimeout)
		err := a.turns.Acquire(ctx, 1)
		cancel()
		a.waiting.Add(-1)
		if r.Context().Err() != nil {
			if err == nil {
				a.turns.Release(1)
			}
			return // the client has gone
		}
		if err != nil {
			refuse(w, http.StatusServiceUnavailable, a.limits.RetryAfter, "the server is at capacity")
			return
		}
	}
	defer a.turns.Release(1)
	a.next.ServeHTTP(w, r)
}

// enter counts a request of client in, unless it has PerClientAtOnce
// admitted already.
func (a *Admission) enter(client string) bool {
	if a.limits.PerClientAtOnce == 0 {
		return true
	}
	a.atOnceMu.Lock()
	defer a.atOnceMu.Unlock()
	if a.atOnce[client] >= a.limits.PerClientAtOnce {
		return false
	}
	a.atOnce[client]++
	return true
}

// leave counts a request of client out, as enter counted it in. A client
// with none left is forgotten: the map holds no more clients than requests
// admitted.
func (a *Admission) leave(client string) {
	if a.limits.PerClientAtOnce == 0 {
		return
	}
	a.atOnceMu.Lock()
	defer a.atOnceMu.Unlock()
	if a.atOnce[client]--; a.atOnce[client] == 0 {
		delete(a.atOnce, client)
	}
}

// allow takes a request from the client's rate, or says how long until its
// next request would be allowed. With no rate per client it allows all.
func (a *admitted) allow(client string) (time.Duration, bool) {
	if a.limits.PerClient == 0 {
		return 0, true
	}
	a.mu.Lock()
	limiter, ok := a.clients[client]
	if !ok {
		if len(a.clients) >= a.limits.MaxClients {
			for forget := range a.clients { // any one: the map is full
				delete(a.clients, forget)
				break
			}
		}
		limiter = rate.NewLimiter(a.limits.PerClient, a.limits.Burst)
		a.clients[client] = limiter
	}
	a.mu.Unlock()
	// AllowN takes a token only if there is one. (Reserve, then Cancel when
	// it says wait, gives back less than it took while the client's other
	// requests reserve meanwhile: a client sending many at once would be
	// served far below its rate.)
	now := time.Now()
	if limiter.AllowN(now, 1) {
		return 0, true
	}
	missing := 1 - limiter.TokensAt(now)
	wait := missing / float64(limiter.Limit()) * float64(time.Second)
	if wait >= math.MaxInt64 { // a rate so low that the wait overflows
		return time.Duration(math.MaxInt64), false
	}
	return time.Duration(wait), false
}

// remoteHost is a request's client: its remote address, as ClientName names
// it, or, when that is not an IP address (a Unix socket's), the address as
// it is, which the server set and the client cannot choose.
func remoteHost(r *http.Request) string {
	if name := ClientName(r.RemoteAddr); name != "" {
		return name
	}
	return r.RemoteAddr
}

// ClientName returns the client an IP address names, to count its rate by,
// or "" if addr is not an IP address, with or without a port. The port is
// dropped (each connection has its own); an IPv4 address (mapped into IPv6
// or not) names itself, an IPv6 address its /56, what a home or office is
// commonly given: an address, or a /64, of its own per request would
// otherwise be a fresh burst each time, and no limit.
func ClientName(addr string) string {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		ip = ap.Addr()
	} else if ip, err = netip.ParseAddr(addr); err != nil {
		return ""
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 56).Masked().String()
}

// refuse answers status with a Retry-After of wait, in whole seconds rounded
// up (at least 1), and a JSON body {"error": msg}.
func refuse(w http.ResponseWriter, status int, wait time.Duration, msg string) {
	seconds := max(1, int64(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(seconds, 10))
	writeError(w, status, msg)
}
