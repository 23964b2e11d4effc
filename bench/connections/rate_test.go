package connections

import (
	"context"
	"fmt"
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

// BenchmarkFastQueryAtPaymentRate: payments arrive at a fixed rate (open
// loop), each 20 ms in the gateway, on a pool of 10 connections; each
// operation is one fast query (a user by id) on the same pool. Besides the
// fast query's latency it reports the payments' own figures: busy-conns, the
// mean connections acquired (L); hold-ms, the time a payment held one
// (W = L ÷ λ, λ the payments completed per second); and little-cliff-per-s,
// the rate Little's law says the pool can take, 10 ÷ W. late-% is the share
// of payments the generator started over a millisecond late: where it is
// not near 0, the rung offered less than it names.
func BenchmarkFastQueryAtPaymentRate(b *testing.B) {
	db := pgtest.ShopClone(b, shop.Small)
	for _, impl := range payImpls() {
		for _, rate := range paymentRates {
			b.Run(fmt.Sprintf("impl=%s/payments-per-s=%d", impl.name, rate), func(b *testing.B) {
				pool := benchkit.SharedPool(b, db, rateLadderPoolSize)
				payments, err := impl.new(pool, sleepyGateway{slowPayDelay})
				if err != nil {
					b.Fatal(err)
				}
				var failed atomic.Int64
				var firstErr atomic.Value
				busy := sampleBusy(pool)
				load := startOpenLoop(rate, func(ctx context.Context, i int64) error {
					_, err := payments.Pay(ctx, i%100+1, 100)
					if err != nil && ctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
					return err
				})
				var latencies []time.Duration
				var name string
				for b.Loop() {
					start := time.Now()
					if err := pool.QueryRow(context.Background(), `SELECT name FROM users WHERE id = 1`).Scan(&name); err != nil {
						b.Fatal(err)
					}
					latencies = append(latencies, time.Since(start))
				}
				elapsed := b.Elapsed()
				paid := load.paid.Load()
				busyConns := busy.mean()
				busy.stop()
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
						b.ReportMetric(rateLadderPoolSize/hold, "little-cliff-per-s")
					}
				}
				b.ReportMetric(100*float64(load.late.Load())/float64(max(load.started.Load(), 1)), "late-%")
			})
		}
	}
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
