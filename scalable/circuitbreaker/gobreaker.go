package circuitbreaker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Gobreaker is [Breaker] made with github.com/sony/gobreaker/v2, the library
// to use rather than a breaker of your own: the same threshold, the same open
// time, one probe, the same failures counted.
type Gobreaker struct {
	cb *gobreaker.CircuitBreaker[struct{}]
}

// NewGobreaker returns a closed breaker that opens after threshold failures in
// a row and stays open for openFor, or an error for a configuration that
// [NewBreaker] refuses too.
func NewGobreaker(threshold int, openFor time.Duration) (*Gobreaker, error) {
	if err := validate(threshold, openFor); err != nil {
		return nil, err
	}
	return &Gobreaker{cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "payment gateway",
		MaxRequests: 1, // one probe while half-open
		Timeout:     openFor,
		ReadyToTrip: func(counts gobreaker.Counts) bool {
			return counts.ConsecutiveFailures >= uint32(threshold)
		},
		IsSuccessful: func(err error) bool { return !IsOutage(err) }, // a 400 is the gateway working
		IsExcluded:   callerLeft,
	})}, nil
}

// Do calls op unless the breaker is open, and counts its outcome.
func (g *Gobreaker) Do(ctx context.Context, op func(ctx context.Context) error) error {
	_, err := g.cb.Execute(func() (struct{}, error) { return struct{}{}, op(ctx) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%w (%w)", ErrOpen, err)
	}
	return err
}

// State returns where the breaker stands now.
func (g *Gobreaker) State() State {
	switch g.cb.State() {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	default:
		return Closed
	}
}
