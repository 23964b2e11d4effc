package connections

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// rateLadderPoolSize is the pool BenchmarkFastQueryAtPaymentRate's payments
// and fast query share: Little's law puts naive's cliff at
// rateLadderPoolSize ÷ the time a payment holds a connection, 10 ÷ 20 ms =
// 500 payments/s and a little less, as a payment also holds it for its
// queries.
const rateLadderPoolSize = 10

// paymentRates is the ladder of arrival rates, in payments per second,
// through naive's cliff and on towards scalable's (past its top rung, a
// version's capacity is a lower bound: knee-found 0).
var paymentRates = []int{100, 200, 300, 400, 450, 500, 600, 800, 1200, 1600}

// openLoop starts a payment every 1/rate seconds from now on, each in a
// goroutine of its own whatever the earlier ones are doing (open loop: the
// arrivals do not wait for the service), until its arrivals are stopped;
// finish then gives the payments in flight until a deadline and cancels the
// rest, through their context, so that a rung past a cliff ends on time
// instead of draining its queue. It counts the payments it started, those
// that paid, failed or were abandoned (canceled by finish before they
// returned), and the late: those it started more than a millisecond after
// their scheduled time (a generator that fell behind offers less than the
// rate it names). A rate is refused outside 1 to maxOpenLoopRate a second:
// at 0 the interval divides by zero, below it the schedule runs backwards,
// and past a billion the interval is 0 and the generator spins.
type openLoop struct {
	started, paid, failed, abandoned, late atomic.Int64

	stopArrivals func()         // stops the arrivals and waits for the generator to return
	cancel       func()         // cancels the payments in flight
	inFlight     sync.WaitGroup // the payments started
	firstErr     atomic.Pointer[error]
}

// maxOpenLoopRate is the highest rate startOpenLoop accepts, a start every
// microsecond: past it a generator that shares the machine falls behind
// anyway.
const maxOpenLoopRate = 1_000_000

func startOpenLoop(rate int, pay func(ctx context.Context, i int64) error) (*openLoop, error) {
	if rate < 1 || rate > maxOpenLoopRate {
		return nil, fmt.Errorf("an open loop at %d a second: the rate must be from 1 to %d", rate, maxOpenLoopRate)
	}
	l := &openLoop{}
	arrivals, stop := context.WithCancel(context.Background())
	payments, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	done := make(chan struct{})
	interval := time.Second / time.Duration(rate)
	go func() {
		defer close(done)
		start := time.Now()
		for i := int64(0); ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if wait := time.Until(due); wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-arrivals.Done():
					timer.Stop()
					return
				case <-timer.C:
				}
			} else if arrivals.Err() != nil {
				return
			}
			if time.Since(due) > time.Millisecond {
				l.late.Add(1)
			}
			l.started.Add(1)
			l.inFlight.Go(func() {
				err := pay(payments, i)
				switch {
				case err == nil:
					l.paid.Add(1)
				case payments.Err() != nil:
					l.abandoned.Add(1)
				default:
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, &err)
				}
			})
		}
	}()
	var once sync.Once
	l.stopArrivals = func() { once.Do(func() { stop(); <-done }) }
	return l, nil
}

// finish stops the arrivals, waits for the payments in flight until
// deadline, then abandons those still running (canceled through their
// context, counted in abandoned) and waits for them to return.
func (l *openLoop) finish(deadline time.Time) {
	l.stopArrivals()
	returned := make(chan struct{})
	go func() { l.inFlight.Wait(); close(returned) }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-returned:
	case <-timer.C:
	}
	l.cancel()
	<-returned
}

// err returns the first error a payment failed with, other than being
// abandoned, or nil.
func (l *openLoop) err() error {
	if p := l.firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// busySampler samples how many of a pool's connections are acquired (what
// acquired returns), every 200 µs, so that the mean is L of Little's law,
// L = λW.
type busySampler struct {
	sum, n atomic.Int64
	stop   func()
}

func sampleBusy(acquired func() int32) *busySampler {
	s := &busySampler{}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s.sum.Add(int64(acquired()))
				s.n.Add(1)
			}
		}
	}()
	s.stop = func() { close(done); <-stopped }
	return s
}

func (s *busySampler) mean() float64 {
	if s.n.Load() == 0 {
		return 0
	}
	return float64(s.sum.Load()) / float64(s.n.Load())
}

// A rung of a ladder takes a bounded time whatever its rate: payments
// arrive for rampUp and then rungWindow, during which the fast query is
// measured; when the window ends the arrivals stop, the payments in flight
// have rungGrace to finish, and the rest are abandoned. Past a cliff the
// queue of payments is not drained after the rung (draining it, a process of
// the ladder once ran over 7 minutes): it is counted, in abandoned-%.
const (
	rampUp       = 250 * time.Millisecond
	rungWindow   = 2 * time.Second
	rungGrace    = time.Second
	probeTimeout = time.Second // a fast query's, or a request's of BenchmarkPoolSizeAtRate's
)

// measureWindow returns how long a rung measures: rungWindow, or a tenth of
// it under -short, where a rung only has to run.
func measureWindow() time.Duration {
	if testing.Short() {
		return rungWindow / 10
	}
	return rungWindow
}

// rungPlan is one rung of a ladder: payments at rate, open loop, for ramp
// and then window; the probe, one call after another, during the window
// alone, each call cut at probeTimeout; when the window ends, the payments
// in flight have grace to finish. acquired, when not nil, says how many of
// the pool's connections are busy, sampled during the window.
type rungPlan struct {
	rate                              int
	ramp, window, grace, probeTimeout time.Duration
	acquired                          func() int32
}

// rungResult is what a rung saw.
type rungResult struct {
	latencies      []time.Duration // of the probe's calls, each started within the window
	probeStarts    []time.Time     // when each of those calls started, before windowEnd
	timeouts       int             // of those calls, cut at probeTimeout: latency = the cap
	windowStart    time.Time
	windowEnd      time.Time
	paidInWindow   int64   // payments that returned paid during the window
	busy           float64 // mean connections acquired during the window (all of them, the probe's too)
	started, paid  int64   // over the whole rung
	failed         int64
	abandoned      int64
	late           int64
	firstPayFailed error
}

// runRung runs a rung of plan: pay is called at plan.rate whatever the
// earlier calls are doing, probe one call after another. It returns once
// every call has returned, at most plan.ramp + plan.window +
// max(plan.grace, plan.probeTimeout) after it started, plus what the
// canceled calls take to return: past a cliff the payments still waiting
// at the deadline are abandoned, not served. An error is the probe's, other
// than its timeout.
func runRung(plan rungPlan, pay func(ctx context.Context, i int64) error, probe func(ctx context.Context) error) (rungResult, error) {
	var r rungResult
	load, err := startOpenLoop(plan.rate, pay)
	if err != nil {
		return r, err
	}
	ramp := time.NewTimer(plan.ramp)
	<-ramp.C
	r.windowStart = time.Now()
	r.windowEnd = r.windowStart.Add(plan.window)
	paidBefore := load.paid.Load()
	var busy *busySampler
	if plan.acquired != nil {
		busy = sampleBusy(plan.acquired)
	}
	ended := make(chan struct{})
	time.AfterFunc(plan.window, func() { // the arrivals stop on time, whatever the probe is waiting for
		load.stopArrivals()
		r.paidInWindow = load.paid.Load() - paidBefore
		if busy != nil {
			busy.stop()
			r.busy = busy.mean()
		}
		close(ended)
	})
	var probeErr error
	for {
		start := time.Now() // one reading a call: the window's test and the call's start are the same instant
		if !start.Before(r.windowEnd) {
			break
		}
		r.probeStarts = append(r.probeStarts, start)
		ctx, cancel := context.WithTimeout(context.Background(), plan.probeTimeout)
		err := probe(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		if err != nil && !timedOut {
			probeErr = fmt.Errorf("the probe at %d payments/s: %w", plan.rate, err)
			break
		}
		if err != nil {
			r.timeouts++
		}
		r.latencies = append(r.latencies, time.Since(start))
	}
	<-ended
	load.finish(r.windowEnd.Add(plan.grace))
	r.started, r.paid, r.failed = load.started.Load(), load.paid.Load(), load.failed.Load()
	r.abandoned, r.late, r.firstPayFailed = load.abandoned.Load(), load.late.Load(), load.err()
	return r, probeErr
}

// warmRatePool opens the pool's connections, each running the fast query
// once, before any payment arrives: a rung measures the rate, not the
// connections' start.
func warmRatePool(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	conns := make([]*pgxpool.Conn, pool.Config().MaxConns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range conns {
		c, err := pool.Acquire(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
		var name string
		if err := c.QueryRow(context.Background(), `SELECT name FROM users WHERE id = 1`).Scan(&name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFastQueryAtPaymentRate: payments arrive at a fixed rate (open
// loop), each 20 ms in the gateway, on a pool of 10 connections; a fast query
// (a user by id) on the same pool runs one call after another while they do.
// Each operation is a rung (runRung): a quarter of a second of payments, then
// 2 s of payments during which the fast query is measured, then a second's
// grace for the payments in flight; the rest are abandoned. Its time per
// operation is the fast query's mean latency, a call cut at 1 s counting as
// 1 s (timeouts-%). Besides the fast query's latency it reports the payments'
// own figures, over the window: busy-conns, the mean connections the payments
// held (L: all the pool's acquired connections, sampled, less the fast
// queries' own); hold-ms, the time a payment held one (W = L ÷ λ, λ the
// payments completed per second, payments/s); and little-cliff-per-s, the
// rate Little's law says the pool can take, 10 ÷ W. late-% is the share of
// payments the generator started over a millisecond late: where it is not
// near 0, the rung offered less than it names. abandoned-% is the share of
// the rung's payments still waiting (or, at most a pool's worth, still
// running) a second after the window: past the cliff, the part of the queue
// that the second of grace did not drain (a queue it drains, up to about
// 1.44× what the pool serves, is 0 here and shows in payments/s instead).
func BenchmarkFastQueryAtPaymentRate(b *testing.B) {
	db := pgtest.ShopClone(b, shop.Small)
	rates := paymentRates
	if testing.Short() {
		rates = rates[:2]
	}
	size, label := benchkit.ClampToBudget(b, rateLadderPoolSize) // a room's budget: a smaller pool, labelled
	for _, impl := range payImpls() {
		for _, rate := range rates {
			b.Run(fmt.Sprintf("impl=%s/payments-per-s=%d%s", impl.name, rate, label), func(b *testing.B) {
				pool := benchkit.SharedPool(b, db, size)
				payments, err := impl.new(pool, sleepyGateway{slowPayDelay})
				if err != nil {
					b.Fatal(err)
				}
				warmRatePool(b, pool)
				plan := rungPlan{rate: rate, ramp: rampUp, window: measureWindow(), grace: rungGrace, probeTimeout: probeTimeout,
					acquired: func() int32 { return pool.Stat().AcquiredConns() }}
				pay := func(ctx context.Context, i int64) error {
					_, err := payments.Pay(ctx, i%100+1, 100)
					return err
				}
				var probeHeld time.Duration // the fast queries' own time with a connection
				fastQuery := func(ctx context.Context) error {
					conn, err := pool.Acquire(ctx)
					if err != nil {
						return err
					}
					acquired := time.Now()
					var name string
					err = conn.QueryRow(ctx, `SELECT name FROM users WHERE id = 1`).Scan(&name)
					conn.Release()
					probeHeld += time.Since(acquired)
					return err
				}
				var latencies []time.Duration
				var timeouts int
				var measured time.Duration
				var paid, started, abandoned, late int64
				var busy float64 // connection-seconds the payments held, over the windows
				for b.Loop() {
					probeHeld = 0
					r, err := runRung(plan, pay, fastQuery)
					if err != nil {
						b.Fatal(err)
					}
					if r.failed > 0 {
						b.Fatalf("%d payments failed, the first: %v", r.failed, r.firstPayFailed)
					}
					latencies = append(latencies, r.latencies...)
					timeouts += r.timeouts
					w := r.windowEnd.Sub(r.windowStart)
					measured += w
					busy += max(r.busy*w.Seconds()-probeHeld.Seconds(), 0) // the payments' alone
					paid += r.paidInWindow
					started, abandoned, late = started+r.started, abandoned+r.abandoned, late+r.late
				}
				benchkit.ReportLatencies(b, latencies)
				var sum time.Duration
				for _, l := range latencies {
					sum += l
				}
				b.ReportMetric(float64(sum.Nanoseconds())/float64(len(latencies)), "ns/op") // the fast query's mean, not the rung's
				b.ReportMetric(100*float64(timeouts)/float64(len(latencies)), "timeouts-%")
				throughput := float64(paid) / measured.Seconds()
				busyConns := busy / measured.Seconds()
				b.ReportMetric(throughput, "payments/s")
				b.ReportMetric(busyConns, "busy-conns")
				little := 0.0
				if throughput > 0 && busyConns > 0 {
					hold := busyConns / throughput
					little = float64(size) / hold
					b.ReportMetric(hold*1000, "hold-ms")
					b.ReportMetric(little, "little-cliff-per-s")
				}
				b.ReportMetric(100*float64(late)/float64(max(started, 1)), "late-%")
				abandonedShare := 100 * float64(abandoned) / float64(max(started, 1))
				b.ReportMetric(abandonedShare, "abandoned-%")
				sorted := slices.Sorted(slices.Values(latencies))
				p99 := sorted[(len(sorted)-1)*99/100]
				ladder.record(impl.name, rung{rate: rate, p99: p99, abandoned: abandonedShare, littleCliff: little})
			})
		}
	}
}

// rateSLO is the fast query's objective on a rung: p99 at most 100 ms.
// A rung meets it only if at most maxAbandoned percent of its payments were
// abandoned, too: a pool that kept the fast query quick by leaving the
// payments queued past the grace has not served the rate. The rule guarantees
// no more than that: a payment that returns within rungGrace of the window's
// end counts as served however long it queued, so a queue that drains within
// the grace passes it. Payments arrive for rampUp + rungWindow = 2.25 s, so
// a pool that serves μ payments a second, offered up to about
// (1 + 1 s ÷ 2.25 s) × μ ≈ 1.44 μ, drains its queue within the second of
// grace and passes (under -short, with a tenth of the window, up to 3.2 μ).
// Such a rung shows in payments/s, served during the window, below the rate
// offered: a figure the rule does not read.
const (
	rateSLO      = 100 * time.Millisecond
	maxAbandoned = 1.0
)

// rung is one rate of the ladder, as measured.
type rung struct {
	rate        int
	p99         time.Duration // of the fast query
	abandoned   float64       // the share of payments abandoned, in percent
	littleCliff float64       // the rate Little's law predicted from this rung's hold time
}

// ladder keeps, by implementation, the last rungs BenchmarkFastQueryAtPaymentRate
// measured in this process, for BenchmarkPaymentCliff.
var ladder = &ladderResults{rungs: make(map[string]map[int]rung)}

type ladderResults struct {
	mu    sync.Mutex
	rungs map[string]map[int]rung
}

func (l *ladderResults) record(impl string, r rung) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rungs[impl] == nil {
		l.rungs[impl] = make(map[int]rung)
	}
	l.rungs[impl][r.rate] = r
}

// of returns impl's rungs, by rate.
func (l *ladderResults) of(impl string) []rung {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rungs []rung
	for _, r := range l.rungs[impl] {
		rungs = append(rungs, r)
	}
	slices.SortFunc(rungs, func(a, b rung) int { return a.rate - b.rate })
	return rungs
}

// cliff returns the highest rate of the ladder met the SLO at (the fast
// query's p99 within slo, at most maxAbandoned percent of the payments
// abandoned: still queued a rungGrace after the window), every lower rate
// having met it too (0 if the lowest did not),
// and the rate Little's law
// predicted from the lowest rung: the pool's connections ÷ the time a
// payment held one there, before any queue.
func cliff(rungs []rung, slo time.Duration) (measured int, predicted float64) {
	if len(rungs) == 0 {
		return 0, 0
	}
	for _, r := range rungs {
		if r.p99 > slo || r.abandoned > maxAbandoned {
			break
		}
		measured = r.rate
	}
	return measured, rungs[0].littleCliff
}

// BenchmarkPaymentCliff, run after BenchmarkFastQueryAtPaymentRate in the
// same process, reports for each version the ladder's capacity, the highest
// rate at which the fast query's p99 stayed within 100 ms (capacity-per-s),
// beside the rate Little's law predicted from the lowest rung
// (little-cliff-per-s), and knee-found, 0 when every rung met the SLO (the
// capacity is then a lower bound: the ladder ended first), else 1. Its time
// per operation is only the arithmetic.
func BenchmarkPaymentCliff(b *testing.B) {
	for _, impl := range payImpls() {
		rungs := ladder.of(impl.name)
		if len(rungs) == 0 { // not measured in this process: run it with -bench 'FastQueryAtPaymentRate|PaymentCliff'
			continue
		}
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			var measured int
			var predicted float64
			for b.Loop() {
				measured, predicted = cliff(rungs, rateSLO)
			}
			b.ReportMetric(float64(measured), "capacity-per-s")
			knee := 1.0
			if measured == rungs[len(rungs)-1].rate {
				knee = 0 // within the SLO at the top rung
			}
			b.ReportMetric(knee, "knee-found")
			b.ReportMetric(predicted, "little-cliff-per-s")
		})
	}
}

func TestCliffIsTheLastRateWithinTheSLO(t *testing.T) {
	ms := time.Millisecond
	rungs := []rung{{100, 2 * ms, 0, 450}, {200, 3 * ms, 0, 440}, {400, 90 * ms, 0.5, 300}, {500, 400 * ms, 30, 250}, {600, 50 * ms, 0, 200}}
	measured, predicted := cliff(rungs, 100*ms)
	assert.Equal(t, 400, measured, "the last rate within the SLO before the first miss; a later lucky rung does not count")
	assert.Equal(t, 450.0, predicted, "from the lowest rung")
	measured, _ = cliff(rungs[3:], 100*ms)
	assert.Zero(t, measured, "the lowest rung already missed")
	abandoning := slices.Clone(rungs)
	abandoning[2].abandoned = 5
	measured, _ = cliff(abandoning, 100*ms)
	assert.Equal(t, 200, measured, "a quick fast query with 5% of the payments abandoned misses")
}

// TestOpenLoopDoesNotWaitForThePayments: the generator starts the payments
// on schedule while every earlier one is still stuck: it offers its rate,
// whatever the service does.
func TestOpenLoopDoesNotWaitForThePayments(t *testing.T) {
	release := make(chan struct{})
	var stuck sync.WaitGroup
	stuck.Add(5)
	load, err := startOpenLoop(1000, func(ctx context.Context, i int64) error {
		if i < 5 {
			stuck.Done()
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	require.NoError(t, err)
	stuck.Wait() // five payments started, none has returned
	assert.Zero(t, load.paid.Load(), "none returned")
	assert.GreaterOrEqual(t, load.started.Load(), int64(5))
	close(release)
	load.finish(time.Now().Add(benchkit.HangBound))
	assert.Equal(t, load.started.Load(), load.paid.Load(), "released in time, every payment paid")
	assert.Zero(t, load.abandoned.Load())
}

// TestOpenLoopRefusesARateItCannotKeep: a rate of 0 (an unset or mistyped
// rate read with strconv.Atoi), below it or above a start a microsecond is
// refused with an error, before any payment starts; the bounds are accepted.
func TestOpenLoopRefusesARateItCannotKeep(t *testing.T) {
	var calls atomic.Int64
	pay := func(ctx context.Context, _ int64) error { calls.Add(1); return nil }
	for _, rate := range []int{0, -1, maxOpenLoopRate + 1, 2_000_000_000} {
		load, err := startOpenLoop(rate, pay)
		assert.ErrorContains(t, err, "the rate must be from 1 to 1000000", "rate %d", rate)
		assert.Nil(t, load, "rate %d", rate)
	}
	assert.Zero(t, calls.Load(), "no payment started at a refused rate")
	for _, rate := range []int{1, maxOpenLoopRate} {
		load, err := startOpenLoop(rate, pay)
		require.NoError(t, err, "rate %d", rate)
		load.finish(time.Now().Add(benchkit.HangBound))
	}
}

// runRungWithin runs runRung in a goroutine and fails the test if it has
// not returned after benchkit.HangBound: a rung that waited for calls that
// never return on their own.
func runRungWithin(t *testing.T, plan rungPlan, pay func(ctx context.Context, i int64) error, probe func(ctx context.Context) error) rungResult {
	t.Helper()
	type result struct {
		r   rungResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := runRung(plan, pay, probe)
		done <- result{r, err}
	}()
	timer := time.NewTimer(benchkit.HangBound)
	defer timer.Stop()
	select {
	case res := <-done:
		require.NoError(t, res.err)
		return res.r
	case <-timer.C:
		t.Fatalf("the rung did not end within %v: it waits for what it should abandon", benchkit.HangBound)
		return rungResult{}
	}
}

// TestRungAbandonsWhatIsLeftAtItsEnd: against a service that never answers,
// a rung still ends: the payments still waiting after its grace are
// canceled and counted as abandoned, every one; the fast query's calls,
// each cut at its timeout, count as timeouts, and none starts after the
// window.
func TestRungAbandonsWhatIsLeftAtItsEnd(t *testing.T) {
	never := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	var probes int
	plan := rungPlan{rate: 500, ramp: 10 * time.Millisecond, window: 50 * time.Millisecond, grace: 20 * time.Millisecond, probeTimeout: 20 * time.Millisecond}
	r := runRungWithin(t, plan,
		func(ctx context.Context, _ int64) error { return never(ctx) },
		func(ctx context.Context) error { probes++; return never(ctx) })
	assert.Positive(t, r.started)
	assert.Equal(t, r.started, r.abandoned, "every payment abandoned, none waited for")
	assert.Zero(t, r.paid)
	assert.Zero(t, r.failed, "abandoned is not failed")
	require.NotEmpty(t, r.latencies)
	assert.Equal(t, probes, len(r.latencies), "a latency a call")
	assert.Len(t, r.probeStarts, probes, "a start a call")
	assert.Equal(t, len(r.latencies), r.timeouts, "every call cut at its timeout")
	for _, at := range r.probeStarts { // the instant the rung tested against the window's end, not one read later
		assert.True(t, at.Before(r.windowEnd), "a call started at %v, at or after the window's end %v", at, r.windowEnd)
	}
}

// TestRungServesWhatTheServiceAnswers: against a service that answers at
// once, nothing is abandoned: every payment started is paid, and the fast
// query never times out.
func TestRungServesWhatTheServiceAnswers(t *testing.T) {
	var calls atomic.Int64
	plan := rungPlan{rate: 500, ramp: 10 * time.Millisecond, window: 50 * time.Millisecond, grace: benchkit.HangBound, probeTimeout: benchkit.HangBound}
	r := runRungWithin(t, plan,
		func(context.Context, int64) error { calls.Add(1); return nil },
		func(context.Context) error { return nil })
	assert.Positive(t, r.started)
	assert.Equal(t, r.started, r.paid, "every payment paid")
	assert.Equal(t, r.started, calls.Load(), "the rung returned after its last payment started, not before")
	assert.Zero(t, r.abandoned)
	assert.Zero(t, r.timeouts)
	assert.NotEmpty(t, r.latencies)
}
