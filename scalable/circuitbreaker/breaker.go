package circuitbreaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"works-vs-scales/shop"
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
// Only failures that say the gateway is down count ([IsOutage]): a timeout, a
// refused or reset connection, a 5xx, a 408 or 429. A 400 is the gateway working, and saying
// no. A call its caller cancelled counts for nothing: neither a failure nor a
// success, and a cancelled probe lets the next call probe.
//
// Every change of state starts a new generation, and a call's outcome counts
// only in the generation that let it out: a slow call admitted while closed
// that returns while half-open does not decide the probe.
type Breaker struct {
	threshold int
	openFor   time.Duration

	mu         sync.Mutex
	state      State
	generation uint64    // changes with the state
	failures   int       // in a row, while closed
	openedAt   time.Time // while open
	probing    bool      // while half-open: the probe is out
}

// NewBreaker returns a closed breaker that opens after threshold failures in a
// row and stays open for openFor, or the error of [validate].
func NewBreaker(threshold int, openFor time.Duration) (*Breaker, error) {
	if err := validate(threshold, openFor); err != nil {
		return nil, err
	}
	return &Breaker{threshold: threshold, openFor: openFor}, nil
}

// validate returns an error wrapping [shop.ErrInvalidConfig] unless threshold
// is at least 1 (and fits gobreaker's uint32 count) and openFor is positive:
// both breakers refuse the same configurations.
func validate(threshold int, openFor time.Duration) error {
	switch {
	case threshold < 1 || threshold > math.MaxUint32:
		return fmt.Errorf("breaker: threshold %d: from 1 to %d failures: %w", threshold, uint32(math.MaxUint32), shop.ErrInvalidConfig)
	case openFor <= 0:
		return fmt.Errorf("breaker: open for %v: a positive time: %w", openFor, shop.ErrInvalidConfig)
	}
	return nil
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
	generation, err := b.allow()
	if err != nil {
		return err
	}
	err = op(ctx)
	b.record(generation, err)
	return err
}

// allow says whether a call may go out now, in which generation; in
// half-open, only the probe.
func (b *Breaker) allow() (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.halfOpenIfDue()
	switch {
	case b.state == Open:
		return 0, fmt.Errorf("%w (retry in %v)", ErrOpen, time.Until(b.openedAt.Add(b.openFor)).Round(time.Millisecond))
	case b.state == HalfOpen && b.probing:
		return 0, fmt.Errorf("%w (a probe is out)", ErrOpen)
	case b.state == HalfOpen:
		b.probing = true
	}
	return b.generation, nil
}

// record counts the outcome of a call let out in generation: it may open or
// close the breaker.
func (b *Breaker) record(generation uint64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.halfOpenIfDue()
	if generation != b.generation {
		return // let out under an earlier state: stale
	}
	if callerLeft(err) {
		b.probing = false // in half-open, the next call probes
		return
	}
	down := IsOutage(err)
	switch b.state {
	case HalfOpen:
		b.probing = false
		if down {
			b.open()
		} else {
			b.setState(Closed)
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
	b.setState(Open)
	b.openedAt = time.Now()
}

func (b *Breaker) halfOpenIfDue() {
	if b.state == Open && time.Since(b.openedAt) > b.openFor {
		b.setState(HalfOpen)
	}
}

// setState moves the breaker to state, in a new generation, with no failure
// counted and no probe out.
func (b *Breaker) setState(state State) {
	b.state, b.failures, b.probing = state, 0, false
	b.generation++
}

// callerLeft reports whether err says the call's caller cancelled it: that
// says nothing about the gateway, and both breakers count it for nothing.
func callerLeft(err error) bool {
	return errors.Is(err, context.Canceled)
}

// IsOutage reports whether err says the gateway is down or overwhelmed,
// rather than refusing one request: it is [gateway.IsOutage], the one reading
// retry's IsTransient shares.
func IsOutage(err error) bool { return gateway.IsOutage(err) }
