package circuitbreaker_test

import (
	"context"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"works-vs-scales/scalable/circuitbreaker"
	"works-vs-scales/shop"
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
	new  func() circuitbreaker.Guard
}{
	{"hand-written", func() circuitbreaker.Guard { return must(circuitbreaker.NewBreaker(threshold, openFor)) }},
	{"gobreaker", func() circuitbreaker.Guard { return must(circuitbreaker.NewGobreaker(threshold, openFor)) }},
}

func must[G circuitbreaker.Guard](g G, err error) circuitbreaker.Guard {
	if err != nil {
		panic(err)
	}
	return g
}

var (
	down       = &gateway.Error{StatusCode: http.StatusServiceUnavailable}
	badRequest = &gateway.Error{StatusCode: http.StatusBadRequest}
)

// call runs one call through g that returns result, and reports whether the
// call reached the gateway.
func call(g circuitbreaker.Guard, result error) (reached bool, err error) {
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
				require.Equal(t, circuitbreaker.Closed, g.State())

				for range threshold - 1 {
					call(g, down)
				}
				call(g, nil)
				require.Equal(t, circuitbreaker.Closed, g.State(), "a success resets the count: failures must come in a row")

				for range threshold {
					reached, err := call(g, down)
					require.True(t, reached)
					require.ErrorIs(t, err, down)
				}
				require.Equal(t, circuitbreaker.Open, g.State(), "opens after %d failures in a row", threshold)

				reached, err := call(g, nil)
				assert.False(t, reached, "open: the gateway is not called")
				assert.ErrorIs(t, err, circuitbreaker.ErrOpen)

				time.Sleep(openFor + time.Millisecond)
				require.Equal(t, circuitbreaker.HalfOpen, g.State(), "after openFor, half-open")
				reached, err = call(g, down)
				assert.True(t, reached, "the probe goes out")
				assert.ErrorIs(t, err, down)
				require.Equal(t, circuitbreaker.Open, g.State(), "the probe failed: open again")

				time.Sleep(openFor + time.Millisecond)
				reached, err = call(g, nil)
				assert.True(t, reached)
				require.NoError(t, err)
				require.Equal(t, circuitbreaker.Closed, g.State(), "the probe passed: closed")
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
				assert.ErrorIs(t, err, circuitbreaker.ErrOpen)
				close(release)
				require.NoError(t, <-probeDone)
				assert.Equal(t, circuitbreaker.Closed, g.State())
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
				assert.Equal(t, circuitbreaker.Closed, g.State(), "a 400 is the gateway working; a caller leaving says nothing about it")
			})
		})
	}
}

func TestStateStringNamesEveryState(t *testing.T) {
	assert.Equal(t, "closed", circuitbreaker.Closed.String())
	assert.Equal(t, "open", circuitbreaker.Open.String())
	assert.Equal(t, "half-open", circuitbreaker.HalfOpen.String())
	assert.Equal(t, "State(3)", circuitbreaker.State(3).String(), "an unknown state is named, not a panic")
	assert.Equal(t, "State(-1)", circuitbreaker.State(-1).String())
}

// A step of a sequence run against a breaker: a call that returns call at
// once (nil: success); a call started and held out, as a slow call is, or
// finished with call, by name; a wait past openFor; or a check of the state.
type step struct {
	call    error
	start   string
	finish  string
	wait    bool
	want    State
	check   bool
	refused bool // the call is refused, without reaching the gateway
}

type State = circuitbreaker.State

var (
	cancelled = context.Canceled
	ok        = callStep(nil)
)

func callStep(err error) step { return step{call: err} }
func want(s State) step       { return step{want: s, check: true} }

// sequences are the breaker's semantics, one table for both implementations.
var sequences = []struct {
	name  string
	steps []step
}{
	{"failures in a row open it", []step{
		callStep(down), callStep(down), ok, callStep(down), callStep(down), want(circuitbreaker.Closed),
		callStep(down), want(circuitbreaker.Open),
	}},
	{"refusals count as the gateway working", []step{
		callStep(down), callStep(down), callStep(badRequest), callStep(down), callStep(down), want(circuitbreaker.Closed),
	}},
	{"down, down, cancelled, down opens it: a cancelled call counts for nothing", []step{
		callStep(down), callStep(down), callStep(cancelled), callStep(down), want(circuitbreaker.Open),
	}},
	{"a cancelled probe leaves it half-open, and the next call probes", []step{
		callStep(down), callStep(down), callStep(down), want(circuitbreaker.Open),
		{wait: true}, want(circuitbreaker.HalfOpen),
		callStep(cancelled), want(circuitbreaker.HalfOpen),
		ok, want(circuitbreaker.Closed),
	}},
	{"a stale success does not decide the probe", []step{
		{start: "slow"}, // admitted while closed
		callStep(down), callStep(down), callStep(down), want(circuitbreaker.Open),
		{wait: true}, {start: "probe"}, want(circuitbreaker.HalfOpen),
		{finish: "slow"}, want(circuitbreaker.HalfOpen),
		{refused: true}, // the probe is still out
		{finish: "probe", call: down}, want(circuitbreaker.Open),
	}},
	{"a stale failure does not count against the closed breaker", []step{
		{start: "slow"},
		callStep(down), callStep(down), callStep(down),
		{wait: true}, ok, want(circuitbreaker.Closed),
		callStep(down), callStep(down), {finish: "slow", call: down}, want(circuitbreaker.Closed),
		callStep(down), want(circuitbreaker.Open),
	}},
}

func TestBreakerSequences(t *testing.T) {
	for _, guard := range guards {
		for _, seq := range sequences {
			t.Run(guard.name+"/"+seq.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					runSequence(t, guard.new(), seq.steps)
				})
			})
		}
	}
}

// runSequence runs steps against g, failing t at the first that goes wrong.
func runSequence(t *testing.T, g circuitbreaker.Guard, steps []step) {
	type held struct {
		result chan error
		done   chan error
	}
	out := make(map[string]held)
	t.Cleanup(func() { // release whatever a failed sequence left out
		for _, h := range out {
			close(h.result)
			<-h.done
		}
	})
	for i, s := range steps {
		switch {
		case s.check:
			require.Equal(t, s.want, g.State(), "step %d", i)
		case s.wait:
			time.Sleep(openFor + time.Millisecond)
		case s.start != "":
			h := held{result: make(chan error), done: make(chan error, 1)}
			out[s.start] = h
			go func() {
				h.done <- g.Do(context.Background(), func(context.Context) error { return <-h.result })
			}()
			synctest.Wait() // admitted, and waiting on the gateway
		case s.finish != "":
			h := out[s.finish]
			delete(out, s.finish)
			h.result <- s.call
			<-h.done
		default:
			reached, err := call(g, s.call)
			if s.refused {
				require.False(t, reached, "step %d: refused", i)
				require.ErrorIs(t, err, circuitbreaker.ErrOpen, "step %d", i)
				continue
			}
			require.True(t, reached, "step %d: the call goes out", i)
		}
	}
}

func TestBreakersRefuseConfigurationThatMakesNoSense(t *testing.T) {
	constructors := map[string]func(threshold int, openFor time.Duration) (circuitbreaker.Guard, error){
		"hand-written": func(n int, d time.Duration) (circuitbreaker.Guard, error) { return circuitbreaker.NewBreaker(n, d) },
		"gobreaker":    func(n int, d time.Duration) (circuitbreaker.Guard, error) { return circuitbreaker.NewGobreaker(n, d) },
	}
	bad := []struct {
		threshold int
		openFor   time.Duration
	}{{0, openFor}, {-1, openFor}, {math.MaxInt, openFor}, {threshold, 0}, {threshold, -time.Second}}
	for name, construct := range constructors {
		for _, c := range bad {
			g, err := construct(c.threshold, c.openFor)
			assert.ErrorIs(t, err, shop.ErrInvalidConfig, "%s(%d, %v)", name, c.threshold, c.openFor)
			assert.Nil(t, g, "%s(%d, %v)", name, c.threshold, c.openFor)
		}
		_, err := construct(1, time.Nanosecond)
		assert.NoError(t, err, "%s: the smallest sensible breaker", name)
	}
}
