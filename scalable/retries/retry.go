package retries

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Policy says how often and how long to try. [Policy.Validate] says whether
// it makes sense; [Do] and [DoWithBackoff] refuse one that does not.
type Policy struct {
	MaxAttempts    int           // tries in all, the first included
	BaseDelay      time.Duration // the cap on the wait after the first failure; doubles after each
	MaxDelay       time.Duration // the cap never grows beyond this
	MaxElapsed     time.Duration // no attempt starts later than this after the first
	AttemptTimeout time.Duration // each attempt gives up after this; 0 for none
}

// DefaultPolicy suits a payment a user waits for: four tries within two
// seconds, none longer than a second.
var DefaultPolicy = Policy{
	MaxAttempts:    4,
	BaseDelay:      50 * time.Millisecond,
	MaxDelay:       1 * time.Second,
	MaxElapsed:     2 * time.Second,
	AttemptTimeout: 1 * time.Second,
}

// Validate returns an error wrapping [shop.ErrInvalidConfig] if the policy
// makes no sense: fewer than one attempt, a negative delay or timeout, a
// MaxDelay below BaseDelay, or no time to try in.
func (p Policy) Validate() error {
	var problem string
	switch {
	case p.MaxAttempts < 1:
		problem = fmt.Sprintf("MaxAttempts %d: at least one attempt", p.MaxAttempts)
	case p.BaseDelay < 0:
		problem = fmt.Sprintf("BaseDelay %v is negative", p.BaseDelay)
	case p.MaxDelay < p.BaseDelay:
		problem = fmt.Sprintf("MaxDelay %v is below BaseDelay %v", p.MaxDelay, p.BaseDelay)
	case p.MaxElapsed <= 0:
		problem = fmt.Sprintf("MaxElapsed %v leaves no time to try", p.MaxElapsed)
	case p.AttemptTimeout < 0:
		problem = fmt.Sprintf("AttemptTimeout %v is negative (0 for none)", p.AttemptTimeout)
	default:
		return nil
	}
	return fmt.Errorf("retry policy: %s: %w", problem, shop.ErrInvalidConfig)
}

// Do calls op until it succeeds, fails with an error [IsTransient] says is
// not worth retrying, or the policy or ctx says stop; it returns op's last
// error, wrapped with the number of attempts.
//
// Between attempts it waits a random time up to an exponentially growing cap
// ("full jitter"), so clients that failed together do not retry together; at
// least as long as the server's Retry-After says; and never past ctx's
// deadline: when the next attempt could not start in time, Do gives up at once.
//
// A policy that makes no sense is refused before the first attempt.
func Do(ctx context.Context, policy Policy, op func(ctx context.Context) error) error {
	if err := policy.Validate(); err != nil {
		return err
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := callWithTimeout(ctx, policy.AttemptTimeout, op)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("attempt %d: %w (%w)", attempt, context.Cause(ctx), err)
		}
		if !IsTransient(err) {
			return fmt.Errorf("attempt %d, not retried: %w", attempt, err)
		}
		if attempt >= policy.MaxAttempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		wait := max(fullJitter(policy, attempt), retryAfter(err))
		next := time.Now().Add(wait)
		if deadline, ok := ctx.Deadline(); ok && next.After(deadline) {
			return fmt.Errorf("gave up after %d attempts, the next would start after the deadline: %w", attempt, err)
		}
		if next.Sub(start) > policy.MaxElapsed {
			return fmt.Errorf("gave up after %d attempts, the next would start after %v: %w", attempt, policy.MaxElapsed, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("attempt %d: %w (%w)", attempt, context.Cause(ctx), err)
		case <-timer.C:
		}
	}
}

// callWithTimeout runs op with a context that ends after timeout, if positive.
func callWithTimeout(ctx context.Context, timeout time.Duration, op func(context.Context) error) error {
	if timeout <= 0 {
		return op(ctx)
	}
	attemptCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return op(attemptCtx)
}

// fullJitter returns the wait after a failed attempt: a random time up to
// BaseDelay·2^(attempt-1), capped at MaxDelay.
func fullJitter(policy Policy, attempt int) time.Duration {
	ceiling := policy.MaxDelay
	if shift := attempt - 1; shift < 32 && policy.BaseDelay<<shift < ceiling {
		ceiling = policy.BaseDelay << shift
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// retryAfter returns how long the gateway asked to wait, or 0.
func retryAfter(err error) time.Duration {
	var gwErr *gateway.Error
	if errors.As(err, &gwErr) {
		return gwErr.RetryAfter
	}
	return 0
}

// IsTransient reports whether err may pass if the same request is sent again:
// the gateway busy, broken or out of reach, as [gateway.IsOutage] says (the
// breaker counts the same failures); PostgreSQL's serialization failures and
// deadlocks; and a query pgx knows never reached PostgreSQL. The gateway
// refusing the request itself (a client error) is not: sending it again gets
// the same answer. Nor is the caller giving up: Do checks its context.
func IsTransient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return gateway.IsOutage(err) || (err != nil && !errors.Is(err, context.Canceled) && pgconn.SafeToRetry(err))
}
