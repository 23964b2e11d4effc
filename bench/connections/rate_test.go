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
// through naive's cliff.
var paymentRates = []int{100, 200, 300, 400, 450, 500, 600, 800}

// openLoop starts a payment every 1/rate seconds from now on, each in a
// goroutine of its own whatever the earlier ones are doing (open loop: the
// arrivals do not wait for the service), until stop is called; stop waits
// for the payments in flight, which it cancels. late counts payments the
// generator started more than a millisecond after their scheduled time: a
// generator that fell behind offers less than the rate it names.
type openLoop struct {
	started, paid, late atomic.Int64
	stop                func()
}

func startOpenLoop(rate int, pay func(ctx context.Context, i int64) error) *openLoop {
	l := &openLoop{}
	ctx, cancel := context.WithCancel(context.Background())
	var inFlight sync.WaitGroup
	done := make(chan struct{})
	interval := time.Second / time.Duration(rate)
	go func() {
		defer close(done)
		start := time.Now()
		for i := int64(0); ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if wait := time.Until(due); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			} else if ctx.Err() != nil {
				return
			}
			if time.Since(due) > time.Millisecond {
				l.late.Add(1)
			}
			l.started.Add(1)
			inFlight.Go(func() {
				if pay(ctx, i) == nil {
					l.paid.Add(1)
				}
			})
		}
	}()
	l.stop = func() {
		cancel()
		<-done
		inFlight.Wait()
	}
	return l
}

// busySampler samples how many of a pool's connections are acquired, every
// 200 µs, so that the mean is L of Little's law, L = λW.
type busySampler struct {
	sum, n atomic.Int64
	stop   func()
}

func sampleBusy(pool *pgxpool.Pool) *busySampler {
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
				s.sum.Add(int64(pool.Stat().AcquiredConns()))
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

// rampUp is how long the payments run before the first fast query.
const rampUp = 250 * time.Millisecond

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
// loop), each 20 ms in the gateway, on a pool of 10 connections; each
// operation is one fast query (a user by id) on the same pool, one after the
// other. Besides the fast query's latency it reports the payments' own
// figures: busy-conns, the mean connections the payments held (L: all the
// pool's acquired connections, sampled, less the fast queries' own); hold-ms, the time a payment held one
// (W = L ÷ λ, λ the payments completed per second); and little-cliff-per-s,
// the rate Little's law says the pool can take, 10 ÷ W. late-% is the share
// of payments the generator started over a millisecond late: where it is
// not near 0, the rung offered less than it names.
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
				var failed atomic.Int64
				var firstErr atomic.Value
				load := startOpenLoop(rate, func(ctx context.Context, i int64) error {
					_, err := payments.Pay(ctx, i%100+1, 100)
					if err != nil && ctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
					return err
				})
				// The payments run for a quarter of a second before the
				// first fast query: past the start, into the rate's own
				// steady state (or its growing queue).
				ramp := time.NewTimer(rampUp)
				<-ramp.C
				busy := sampleBusy(pool)
				paidBefore := load.paid.Load()
				var latencies []time.Duration
				var probeHeld time.Duration // the fast queries' own time with a connection
				var name string
				for b.Loop() {
					start := time.Now()
					conn, err := pool.Acquire(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					acquired := time.Now()
					err = conn.QueryRow(context.Background(), `SELECT name FROM users WHERE id = 1`).Scan(&name)
					conn.Release()
					if err != nil {
						b.Fatal(err)
					}
					latencies = append(latencies, time.Since(start))
					probeHeld += time.Since(acquired)
				}
				elapsed := b.Elapsed()
				paid := load.paid.Load() - paidBefore
				busy.stop()
				busyConns := max(busy.mean()-probeHeld.Seconds()/elapsed.Seconds(), 0) // the payments' alone
				load.stop()
				if failed.Load() > 0 {
					b.Fatalf("%d payments failed, the first: %v", failed.Load(), firstErr.Load())
				}
				benchkit.ReportLatencies(b, latencies)
				throughput := float64(paid) / elapsed.Seconds()
				b.ReportMetric(throughput, "payments/s")
				b.ReportMetric(busyConns, "busy-conns")
				if throughput > 0 {
					hold := busyConns / throughput
					b.ReportMetric(hold*1000, "hold-ms")
					if hold > 0 {
						b.ReportMetric(float64(size)/hold, "little-cliff-per-s")
					}
				}
				late := 100 * float64(load.late.Load()) / float64(max(load.started.Load(), 1))
				b.ReportMetric(late, "late-%")
				sorted := slices.Sorted(slices.Values(latencies))
				p99 := sorted[(len(sorted)-1)*99/100]
				little := 0.0
				if throughput > 0 && busyConns > 0 {
					little = float64(size) * throughput / busyConns
				}
				ladder.record(impl.name, rung{rate: rate, p99: p99, littleCliff: little})
			})
		}
	}
}

// rateSLO is the fast query's objective on a rung: p99 at most 100 ms.
const rateSLO = 100 * time.Millisecond

// rung is one rate of the ladder, as measured.
type rung struct {
	rate        int
	p99         time.Duration // of the fast query
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

// cliff returns the highest rate of the ladder met the SLO at, every lower
// rate having met it too (0 if the lowest did not), and the rate Little's law
// predicted from the lowest rung: the pool's connections ÷ the time a
// payment held one there, before any queue.
func cliff(rungs []rung, slo time.Duration) (measured int, predicted float64) {
	if len(rungs) == 0 {
		return 0, 0
	}
	for _, r := range rungs {
		if r.p99 > slo {
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
// (little-cliff-per-s). Its time per operation is only the arithmetic.
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
			b.ReportMetric(predicted, "little-cliff-per-s")
		})
	}
}

func TestCliffIsTheLastRateWithinTheSLO(t *testing.T) {
	ms := time.Millisecond
	rungs := []rung{{100, 2 * ms, 450}, {200, 3 * ms, 440}, {400, 90 * ms, 300}, {500, 400 * ms, 250}, {600, 50 * ms, 200}}
	measured, predicted := cliff(rungs, 100*ms)
	assert.Equal(t, 400, measured, "the last rate within the SLO before the first miss; a later lucky rung does not count")
	assert.Equal(t, 450.0, predicted, "from the lowest rung")
	measured, _ = cliff(rungs[3:], 100*ms)
	assert.Zero(t, measured, "the lowest rung already missed")
}

// TestOpenLoopDoesNotWaitForThePayments: the generator starts the payments
// on schedule while every earlier one is still stuck: it offers its rate,
// whatever the service does.
func TestOpenLoopDoesNotWaitForThePayments(t *testing.T) {
	release := make(chan struct{})
	var stuck sync.WaitGroup
	stuck.Add(5)
	load := startOpenLoop(1000, func(ctx context.Context, i int64) error {
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
	stuck.Wait() // five payments started, none has returned
	assert.Zero(t, load.paid.Load(), "none returned")
	assert.GreaterOrEqual(t, load.started.Load(), int64(5))
	close(release)
	load.stop()
}
