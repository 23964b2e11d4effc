package races

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrContended is returned when a buy that tries again gave up: other buyers
// of the product won every attempt.
var ErrContended = errors.New("gave up: other buyers kept changing the stock")

// Policy says how often [BuyOptimistic] and [BuySerializable] try, and how
// long they wait between tries.
type Policy struct {
	MaxAttempts int           // tries in all, the first included
	BaseDelay   time.Duration // the cap on the wait after the first failure; doubles after each
	MaxDelay    time.Duration // the cap never grows beyond this
	// OnRetry, if set, is called before each wait with the error that ended
	// the attempt: a hook for metrics.
	OnRetry func(err error)
}

// DefaultPolicy suits a buyer who waits: ten tries, waits from a millisecond
// up to 50 ms.
var DefaultPolicy = Policy{MaxAttempts: 10, BaseDelay: time.Millisecond, MaxDelay: 50 * time.Millisecond}

// withRetries calls attempt until it succeeds, fails with an error retryable
// says not to try again, policy says stop, or ctx ends. Between attempts it
// waits a random time up to a cap that doubles each time (full jitter, as in
// lesson 9), so buyers who collided do not collide again.
func withRetries(ctx context.Context, policy Policy, retryable func(error) bool, attempt func() (int64, error)) (int64, error) {
	for n := 1; ; n++ {
		id, err := attempt()
		if err == nil || !retryable(err) {
			return id, err
		}
		if n >= max(policy.MaxAttempts, 1) {
			return 0, fmt.Errorf("%w after %d attempts: %w", ErrContended, n, err)
		}
		if policy.OnRetry != nil {
			policy.OnRetry(err)
		}
		ceiling := policy.MaxDelay
		if shift := n - 1; shift < 32 && policy.BaseDelay<<shift < ceiling {
			ceiling = policy.BaseDelay << shift
		}
		timer := time.NewTimer(rand.N(max(ceiling, 0) + 1))
		select {
		case <-ctx.Done():
			timer.Stop()
			return 0, fmt.Errorf("attempt %d: %w (%w)", n, context.Cause(ctx), err)
		case <-timer.C:
		}
	}
}
