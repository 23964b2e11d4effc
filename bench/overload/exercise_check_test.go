package overload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/semaphore"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/overload"
	scalable "works-vs-scales/scalable/overload"
	"works-vs-scales/shop"
)

// Lesson 16's exercise, in exercises/overload: a limit on the requests served
// at once. Its check is here, with the proof that it fails on the starting
// point and on the wrong answer the lesson warns about (a limit that queues),
// and passes on the answer; the trainee's run of it, TestExercise16, is in
// exercise_test.go, behind the exercise tag.

type limitFunc func(next http.Handler, concurrency int) (http.Handler, error)

const (
	limitConcurrency = 3
	limitExtra       = 5
	// limitPatience bounds each wait of the check: a refusal takes
	// microseconds, so only a request that waits for a turn (or a limit
	// that lets too few in) reaches it.
	limitPatience = 5 * time.Second
)

// checkExercise16 says what is still wrong with an answer to lesson 16's
// exercise, or nil when it is done: a concurrency below 1 refused; with
// limitConcurrency requests held inside the handler, limitExtra more refused
// at once with 503 and a Retry-After in seconds; once the first are done,
// new requests served again; and, under -race, no data race while they are
// served at once (the first limitConcurrency reach the limit on goroutines of
// their own, none waiting for another).
func checkExercise16(t *testing.T, limit limitFunc) (err error) {
	defer func() {
		if benchkit.RaceReported(t) {
			err = errors.Join(errors.New("the race detector reported a data race while requests were served at once (its report, above, names the memory and the lines): "+
				"each request runs on a goroutine of its own, so what your Limit shares between them, such as a count of the requests being served, "+
				"needs a mutex, a channel or sync/atomic (lesson 16, \"The scales version\")"), err)
		}
	}()
	for _, bad := range []int{0, -1} {
		if _, err := limit(http.NotFoundHandler(), bad); !errors.Is(err, shop.ErrInvalidConfig) {
			return fmt.Errorf("Limit(next, %d): got %v, want an error wrapping shop.ErrInvalidConfig", bad, err)
		}
	}
	h, entered, release := blockingHandler()
	limited, err := limit(h, limitConcurrency)
	if err != nil {
		return fmt.Errorf("Limit(next, %d): %w", limitConcurrency, err)
	}
	url := serve(t, limited)
	t.Cleanup(release) // registered after the server: runs before it closes

	held := make(chan answer, limitConcurrency)
	for range limitConcurrency {
		go func() { held <- getURL(context.Background(), url) }()
	}
	for i := range limitConcurrency {
		select {
		case <-entered:
		case <-time.After(limitPatience):
			return fmt.Errorf("%d requests at once with a limit of %d: only %d reached the handler", limitConcurrency, limitConcurrency, i)
		}
	}

	extra := make(chan answer, limitExtra)
	for range limitExtra {
		go func() { extra <- getURL(context.Background(), url) }()
	}
	for i := range limitExtra {
		select {
		case <-entered:
			return fmt.Errorf("%d requests served at once with a limit of %d", limitConcurrency+1, limitConcurrency)
		case <-time.After(limitPatience):
			return fmt.Errorf("%d of %d requests beyond the limit still wait after %v: refuse them at once, a queue without a bound is the naive server's", limitExtra-i, limitExtra, limitPatience)
		case a := <-extra:
			if a.err != nil {
				return fmt.Errorf("a request beyond the limit: %w", a.err)
			}
			if a.status != http.StatusServiceUnavailable {
				return fmt.Errorf("a request beyond the limit got %d, want 503", a.status)
			}
			if seconds, err := strconv.Atoi(a.retryAfter); err != nil || seconds < 1 {
				return fmt.Errorf("a request beyond the limit got Retry-After %q, want a whole number of seconds, at least 1", a.retryAfter)
			}
		}
	}

	release()
	for range limitConcurrency {
		if a := <-held; a.err != nil || a.status != http.StatusOK {
			return fmt.Errorf("a request within the limit got %d (%v), want 200", a.status, a.err)
		}
	}
	for i := range 2 * limitConcurrency {
		if a := getURL(context.Background(), url); a.err != nil || a.status != http.StatusOK {
			return fmt.Errorf("request %d after the first ones finished got %d (%v), want 200: give the turn back when a request ends", i+1, a.status, a.err)
		}
	}
	return nil
}

func TestExercise16CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise16(t, exercise.Limit)
	require.ErrorContains(t, err, "served at once with a limit")
}

func TestExercise16CheckFailsOnALimitThatQueues(t *testing.T) {
	err := checkExercise16(t, queueingLimit)
	require.ErrorContains(t, err, "still wait")
}

func TestExercise16CheckFailsOnATurnNeverGivenBack(t *testing.T) {
	err := checkExercise16(t, leakyLimit)
	require.ErrorContains(t, err, "give the turn back")
}

func TestExercise16CheckFailsOnARacyCounter(t *testing.T) {
	if !benchkit.RaceEnabled {
		t.Skip("a data race is caught by the race detector alone: this runs under go test -race (the lesson's command, and .ci/run's second pass)")
	}
	if !benchkit.InChild(t) {
		// Its data race fails the test binary it runs in: read the verdict
		// from a child.
		out, err := benchkit.RunInChild(t)
		require.Error(t, err, "the racy counter passed under -race:\n%s", out)
		require.Contains(t, out, "WARNING: DATA RACE")
		require.Contains(t, out, "the race detector reported a data race while requests were served at once")
		return
	}
	err := checkExercise16(t, racyCounterLimit)
	t.Log(err)
	require.ErrorContains(t, err, "data race")
}

func TestExercise16CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise16(t, func(next http.Handler, concurrency int) (http.Handler, error) {
		return scalable.Admit(next, scalable.Limits{Concurrency: concurrency, RetryAfter: time.Second})
	}))
}

// queueingLimit is the wrong answer the lesson warns about: a semaphore
// whose extra requests wait for a turn for as long as their client does. At
// most concurrency are served at once, and the rest queue without bound, as
// they did on the pool.
func queueingLimit(next http.Handler, concurrency int) (http.Handler, error) {
	if concurrency < 1 {
		return nil, fmt.Errorf("a limit of %d: %w", concurrency, shop.ErrInvalidConfig)
	}
	turns := semaphore.NewWeighted(int64(concurrency))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := turns.Acquire(r.Context(), 1); err != nil {
			return
		}
		defer turns.Release(1)
		next.ServeHTTP(w, r)
	}), nil
}

// leakyLimit refuses right, but gives a turn back only when the handler
// answered 200 through it: a request that ends any other way (here: every
// request, as next writes no status) keeps its turn for ever.
func leakyLimit(next http.Handler, concurrency int) (http.Handler, error) {
	if concurrency < 1 {
		return nil, fmt.Errorf("a limit of %d: %w", concurrency, shop.ErrInvalidConfig)
	}
	turns := semaphore.NewWeighted(int64(concurrency))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !turns.TryAcquire(1) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusOK {
			turns.Release(1)
		}
	}), nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// racyCounterLimit refuses and gives turns back as it should, but counts the
// requests being served in a plain int that every request's goroutine reads
// and writes: a data race, which may let more than concurrency in, or lose a
// turn given back.
func racyCounterLimit(next http.Handler, concurrency int) (http.Handler, error) {
	if concurrency < 1 {
		return nil, fmt.Errorf("a limit of %d: %w", concurrency, shop.ErrInvalidConfig)
	}
	return &racyCounter{next: next, limit: concurrency}, nil
}

type racyCounter struct {
	next            http.Handler
	limit, inFlight int
}

func (c *racyCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.inFlight >= c.limit {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	c.inFlight++
	defer func() { c.inFlight-- }()
	c.next.ServeHTTP(w, r)
}
