package retries_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"works-vs-scales/scalable/retries"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The retry loops' schedules are checked in synctest bubbles: time is fake,
// and jumps ahead whenever every goroutine waits, so a schedule of seconds
// runs in microseconds and is measured exactly.

var policy = retries.Policy{
	MaxAttempts:    5,
	BaseDelay:      100 * time.Millisecond,
	MaxDelay:       400 * time.Millisecond,
	MaxElapsed:     10 * time.Second,
	AttemptTimeout: time.Second,
}

type doFunc func(ctx context.Context, policy retries.Policy, op func(ctx context.Context) error) error

var loops = []struct {
	name string
	do   doFunc
}{{"hand-written", retries.Do}, {"cenkalti-backoff", retries.DoWithBackoff}}

var (
	unavailable = &gateway.Error{StatusCode: http.StatusServiceUnavailable}
	badRequest  = &gateway.Error{StatusCode: http.StatusBadRequest}
	reset       = fmt.Errorf("gateway: charge user 1: %w", syscall.ECONNRESET)
)

// failing returns an op that fails with each of errs in turn, then succeeds,
// and records when each attempt started.
func failing(errs ...error) (op func(context.Context) error, starts *[]time.Time) {
	starts = new([]time.Time)
	return func(context.Context) error {
		*starts = append(*starts, time.Now())
		if i := len(*starts) - 1; i < len(errs) {
			return errs[i]
		}
		return nil
	}, starts
}

// waits returns the time between consecutive attempts.
func waits(starts []time.Time) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]))
	}
	return gaps
}

func TestRetriesTransientFailuresWithCappedExponentialJitter(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				op, starts := failing(unavailable, reset, unavailable, unavailable)
				require.NoError(t, loop.do(t.Context(), policy, op))
				require.Len(t, *starts, 5, "four failures, then success")
				caps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
				for i, wait := range waits(*starts) {
					assert.LessOrEqual(t, wait, caps[i], "wait %d is at most base·2^%d, capped", i+1, i)
				}
			})
		})
	}
}

func TestJitterSpreadsRetries(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				distinct := make(map[time.Duration]bool)
				for range 20 {
					op, starts := failing(unavailable)
					require.NoError(t, loop.do(t.Context(), policy, op))
					distinct[waits(*starts)[0]] = true
				}
				assert.Greater(t, len(distinct), 10, "twenty clients failing together do not retry together")
			})
		})
	}
}

func TestNeverRetriesAClientError(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				op, starts := failing(badRequest)
				err := loop.do(t.Context(), policy, op)
				assert.ErrorIs(t, err, badRequest)
				assert.Len(t, *starts, 1, "a 400 gets the same answer every time")
			})
		})
	}
}

func TestStopsAfterMaxAttempts(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				op, starts := failing(unavailable, unavailable, unavailable, unavailable, unavailable, unavailable)
				err := loop.do(t.Context(), policy, op)
				assert.ErrorIs(t, err, unavailable, "the last failure is returned")
				assert.Len(t, *starts, policy.MaxAttempts)
			})
		})
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				busy := &gateway.Error{StatusCode: http.StatusServiceUnavailable, RetryAfter: 3 * time.Second}
				op, starts := failing(busy)
				require.NoError(t, loop.do(t.Context(), policy, op))
				assert.GreaterOrEqual(t, waits(*starts)[0], 3*time.Second, "no sooner than the gateway asked")
			})
		})
	}
}

func TestStopsAtMaxElapsed(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				busy := &gateway.Error{StatusCode: http.StatusServiceUnavailable, RetryAfter: 30 * time.Second}
				op, starts := failing(busy, busy)
				start := time.Now()
				err := loop.do(t.Context(), policy, op)
				assert.ErrorIs(t, err, busy)
				assert.Len(t, *starts, 1, "the next try would start after MaxElapsed")
				assert.Zero(t, time.Since(start), "and the loop did not wait to find out")
			})
		})
	}
}

func TestGivesUpAtOnceWhenTheNextTryWouldMissTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		busy := &gateway.Error{StatusCode: http.StatusServiceUnavailable, RetryAfter: 2 * time.Second}
		op, starts := failing(busy)
		start := time.Now()
		err := retries.Do(ctx, policy, op)
		assert.ErrorIs(t, err, busy, "the caller learns why, not just that time ran out")
		assert.Len(t, *starts, 1)
		assert.Zero(t, time.Since(start), "no waiting for a try that could not happen")
	})
}

func TestStopsWhenTheCallerCancels(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				attempts := 0
				err := loop.do(ctx, policy, func(context.Context) error {
					attempts++
					cancel()
					return unavailable
				})
				assert.ErrorIs(t, err, context.Canceled)
				assert.Equal(t, 1, attempts)
			})
		})
	}
}

func TestEachAttemptHasItsOwnTimeout(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				attempts := 0
				err := loop.do(t.Context(), policy, func(ctx context.Context) error {
					attempts++
					if attempts == 1 {
						<-ctx.Done() // a hung gateway: only the attempt's timeout ends it
						return ctx.Err()
					}
					return nil
				})
				require.NoError(t, err)
				assert.Equal(t, 2, attempts, "the hung attempt timed out and the next one went through")
			})
		})
	}
}

func TestIsTransient(t *testing.T) {
	transient := []error{
		unavailable, reset,
		&gateway.Error{StatusCode: http.StatusInternalServerError},
		&gateway.Error{StatusCode: http.StatusTooManyRequests},
		context.DeadlineExceeded,
	}
	for _, err := range transient {
		assert.True(t, retries.IsTransient(err), "%v", err)
	}
	permanent := []error{badRequest, &gateway.Error{StatusCode: http.StatusUnprocessableEntity}, context.Canceled, errors.New("invalid currency")}
	for _, err := range permanent {
		assert.False(t, retries.IsTransient(err), "%v", err)
	}
}

func TestRefusesAPolicyThatMakesNoSense(t *testing.T) {
	valid := policy
	bad := map[string]func(p *retries.Policy){
		"no attempts":              func(p *retries.Policy) { p.MaxAttempts = 0 },
		"negative attempts":        func(p *retries.Policy) { p.MaxAttempts = -1 },
		"negative base delay":      func(p *retries.Policy) { p.BaseDelay = -time.Second },
		"max delay below the base": func(p *retries.Policy) { p.MaxDelay = p.BaseDelay - 1 },
		"no time to try":           func(p *retries.Policy) { p.MaxElapsed = 0 },
		"negative time to try":     func(p *retries.Policy) { p.MaxElapsed = -time.Second },
		"negative attempt timeout": func(p *retries.Policy) { p.AttemptTimeout = -time.Second },
	}
	for name, spoil := range bad {
		p := valid
		spoil(&p)
		assert.ErrorIs(t, p.Validate(), shop.ErrInvalidConfig, name)
		for _, loop := range loops {
			synctest.Test(t, func(t *testing.T) {
				attempts := 0
				err := loop.do(t.Context(), p, func(context.Context) error { attempts++; return unavailable })
				assert.ErrorIs(t, err, shop.ErrInvalidConfig, "%s: %s", loop.name, name)
				assert.Zero(t, attempts, "%s: %s: refused before the first attempt", loop.name, name)
			})
		}
	}
	require.NoError(t, valid.Validate())
	require.NoError(t, retries.DefaultPolicy.Validate())
	noTimeout := valid
	noTimeout.AttemptTimeout = 0 // documented: no timeout of its own
	require.NoError(t, noTimeout.Validate())
}
