package breaker_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"works-vs-scales/scalable/breaker"
	"works-vs-scales/shop/gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	threshold = 3
	openFor   = 10 * time.Second
)

// The walks run in synctest bubbles: the ten seconds a breaker stays open pass
// in no time, exactly.

var guards = []struct {
	name string
	new  func() breaker.Guard
}{
	{"hand-written", func() breaker.Guard { return breaker.NewBreaker(threshold, openFor) }},
	{"gobreaker", func() breaker.Guard { return breaker.NewGobreaker(threshold, openFor) }},
}

var (
	down       = &gateway.Error{StatusCode: http.StatusServiceUnavailable}
	badRequest = &gateway.Error{StatusCode: http.StatusBadRequest}
)

// call runs one call through g that returns result, and reports whether the
// call reached the gateway.
func call(g breaker.Guard, result error) (reached bool, err error) {
	err = g.Do(context.Background(), func(context.Context) error {
		reached = true
		return result
	})
	return reached, err
}

func TestBreakerWalksClosedOpenHalfOpenClosed(t *testing.T) {
	for _, guard := range guards {
		t.Run(guard.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := guard.new()
				require.Equal(t, breaker.Closed, g.State())

				for range threshold - 1 {
					call(g, down)
				}
				call(g, nil)
				require.Equal(t, breaker.Closed, g.State(), "a success resets the count: failures must come in a row")

				for range threshold {
					reached, err := call(g, down)
					require.True(t, reached)
					require.ErrorIs(t, err, down)
				}
				require.Equal(t, breaker.Open, g.State(), "opens after %d failures in a row", threshold)

				reached, err := call(g, nil)
				assert.False(t, reached, "open: the gateway is not called")
				assert.ErrorIs(t, err, breaker.ErrOpen)

				time.Sleep(openFor + time.Millisecond)
				require.Equal(t, breaker.HalfOpen, g.State(), "after openFor, half-open")
				reached, err = call(g, down)
				assert.True(t, reached, "the probe goes out")
				assert.ErrorIs(t, err, down)
				require.Equal(t, breaker.Open, g.State(), "the probe failed: open again")

				time.Sleep(openFor + time.Millisecond)
				reached, err = call(g, nil)
				assert.True(t, reached)
				require.NoError(t, err)
				require.Equal(t, breaker.Closed, g.State(), "the probe passed: closed")
			})
		})
	}
}

func TestBreakerLetsOneProbeOut(t *testing.T) {
	for _, guard := range guards {
		t.Run(guard.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := guard.new()
				for range threshold {
					call(g, down)
				}
				time.Sleep(openFor + time.Millisecond)

				release := make(chan struct{})
				probeDone := make(chan error)
				go func() {
					probeDone <- g.Do(context.Background(), func(context.Context) error { <-release; return nil })
				}()
				synctest.Wait() // the probe is out, and waits on the gateway
				reached, err := call(g, nil)
				assert.False(t, reached, "a second call while the probe is out")
				assert.ErrorIs(t, err, breaker.ErrOpen)
				close(release)
				require.NoError(t, <-probeDone)
				assert.Equal(t, breaker.Closed, g.State())
			})
		})
	}
}

func TestBreakerIgnoresRefusalsAndCancellations(t *testing.T) {
	for _, guard := range guards {
		t.Run(guard.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := guard.new()
				for range 10 * threshold {
					call(g, badRequest)
					call(g, context.Canceled)
				}
				assert.Equal(t, breaker.Closed, g.State(), "a 400 is the gateway working; a caller leaving says nothing about it")
			})
		})
	}
}

func TestStateStringNamesEveryState(t *testing.T) {
	assert.Equal(t, "closed", breaker.Closed.String())
	assert.Equal(t, "open", breaker.Open.String())
	assert.Equal(t, "half-open", breaker.HalfOpen.String())
	assert.Equal(t, "State(3)", breaker.State(3).String(), "an unknown state is named, not a panic")
	assert.Equal(t, "State(-1)", breaker.State(-1).String())
}
