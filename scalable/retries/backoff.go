package retries

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// DoWithBackoff is [Do] written with github.com/cenkalti/backoff/v5, the
// library to use rather than a loop of your own: the same policy, the same
// jitter, the same errors retried.
//
// One difference: Do gives up at once when the next attempt could not start
// before ctx's deadline; the library waits until the context ends, then
// returns its error.
//
// A policy that makes no sense is refused before the first attempt, as Do
// refuses it: the library would take 0 attempts for "no limit".
func DoWithBackoff(ctx context.Context, policy Policy, op func(ctx context.Context) error) error {
	if err := policy.Validate(); err != nil {
		return err
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := callWithTimeout(ctx, policy.AttemptTimeout, op)
		switch {
		case err == nil:
			return struct{}{}, nil
		case !IsTransient(err):
			return struct{}{}, backoff.Permanent(err)
		case retryAfter(err) > 0:
			// The library waits exactly as long as a RetryAfterError says: the
			// header's whole seconds. Both errors are kept for the caller.
			return struct{}{}, fmt.Errorf("%w (%w)", err, backoff.RetryAfter(int(retryAfter(err)/time.Second)))
		default:
			return struct{}{}, err
		}
	},
		backoff.WithBackOff(&fullJitterBackOff{policy: policy}),
		backoff.WithMaxTries(uint(policy.MaxAttempts)),
		backoff.WithMaxElapsedTime(policy.MaxElapsed),
	)
	return err
}

// fullJitterBackOff is the library's BackOff with Do's waits.
type fullJitterBackOff struct {
	policy  Policy
	attempt int
}

func (b *fullJitterBackOff) NextBackOff() time.Duration {
	b.attempt++
	return fullJitter(b.policy, b.attempt)
}

func (b *fullJitterBackOff) Reset() { b.attempt = 0 }
