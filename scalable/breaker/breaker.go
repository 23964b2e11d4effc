package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"works-vs-scales/shop/gateway"
)

// ErrOpen is returned, without calling the gateway, while a breaker is open.
var ErrOpen = errors.New("circuit breaker open: the gateway is failing, not called")

// State is where a breaker stands.
type State int

const (
	Closed   State = iota // calls go through; failures are counted
	Open                  // calls fail at once, until OpenFor has passed
	HalfOpen              // one call, the probe, goes through; its outcome closes or opens
)

// String returns the state's name: "closed", "open", "half-open", or
// "State(n)" for a value that is none of them.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Guard runs calls to the gateway, or refuses them with [ErrOpen] while the
// gateway is down. [Breaker] is one written by hand; [Gobreaker] the same
// with github.com/sony/gobreaker/v2.
type Guard interface {
	Do(ctx context.Context, op func(ctx context.Context) error) error
	State() State
}

// Breaker is a circuit breaker: after Threshold failures in a row it opens,
// and calls fail at once instead of waiting on a gateway that is down; after
// OpenFor it lets one call through to probe, and closes if it succeeds.
//
// Only failures that say the gateway is down count: a timeout, a refused or
// reset connection, a 5xx, a 429. A 400 is the gateway working, and saying
// no.
type Breaker struct {
	threshold int
	openFor   time.Duration

	mu       sync.Mutex
	state    State
	failures int       // in a row, while closed
	openedAt time.Time // while open
	probing  bool      // while half-open: the probe is out
}

// NewBreaker returns a closed breaker that opens after threshold failures in a
// row and stays open for openFor.
func NewBreaker(threshold int, openFor time.Duration) *Breaker {
	return &Breaker{threshold: threshold, openFor: openFor}
}

// State returns where the breaker stands now.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.halfOpenIfDue()
	return b.state
}

// Do calls op unless the breaker is open, and counts its outcome.
func (b *Breaker) Do(ctx context.Context, op func(ctx context.Context) error) error {
	if err := b.allow(); err != nil {
		return err
	}
	err := op(ctx)
	b.record(err)
	return err
}

// allow says whether a call may go out now; in half-open, only the probe.
func (b *Breaker) allow() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.halfOpenIfDue()
	switch {
	case b.state == Open:
		return fmt.Errorf("%w (retry in %v)", ErrOpen, time.Until(b.openedAt.Add(b.openFor)).Round(time.Millisecond))
	case b.state == HalfOpen && b.probing:
		return fmt.Errorf("%w (a probe is out)", ErrOpen)
	case b.state == HalfOpen:
		b.probing = true
	}
	return nil
}

// record counts a call's outcome: it may open or close the breaker.
func (b *Breaker) record(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	down := IsOutage(err)
	switch b.state {
	case HalfOpen:
		b.probing = false
		if down {
			b.open()
		} else {
			b.state, b.failures = Closed, 0
		}
	case Closed:
		if !down {
			b.failures = 0
			return
		}
		if b.failures++; b.failures >= b.threshold {
			b.open()
		}
	}
}

func (b *Breaker) open() {
	b.state, b.openedAt, b.failures = Open, time.Now(), 0
}

func (b *Breaker) halfOpenIfDue() {
	if b.state == Open && time.Since(b.openedAt) > b.openFor {
		b.state, b.probing = HalfOpen, false
	}
}

// IsOutage reports whether err says the gateway is down or overwhelmed,
// rather than refusing one request: a timeout, a refused, reset or closed
// connection, a 5xx, a 429. A call its caller cancelled says nothing about
// the gateway.
func IsOutage(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var gwErr *gateway.Error
	if errors.As(err, &gwErr) {
		return gwErr.StatusCode >= 500 || gwErr.StatusCode == http.StatusTooManyRequests
	}
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}
