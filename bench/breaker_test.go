package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naivebreaker "works-vs-scales/naive/circuitbreaker"
	naiveretry "works-vs-scales/naive/retries"
	scalablebreaker "works-vs-scales/scalable/circuitbreaker"
	scalableretry "works-vs-scales/scalable/retries"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// outageTimeout is how long each call to a hung gateway waits, in lesson 10.
const outageTimeout = 50 * time.Millisecond

// newBreaker returns a hand-written breaker, failing tb if it refuses the
// configuration.
func newBreaker(tb testing.TB, threshold int, openFor time.Duration) *scalablebreaker.Breaker {
	tb.Helper()
	b, err := scalablebreaker.NewBreaker(threshold, openFor)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// newNaivePayments returns naive/breaker's Payments, failing tb if it
// refuses the configuration.
func newNaivePayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) *naivebreaker.Payments {
	tb.Helper()
	p, err := naivebreaker.NewPayments(db, gw, timeout)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// newGuardedPayments returns scalable/breaker's Payments, failing tb if it
// refuses the configuration.
func newGuardedPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration, guard scalablebreaker.Guard) *scalablebreaker.Payments {
	tb.Helper()
	p, err := scalablebreaker.NewPayments(db, gw, timeout, guard)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// newRelay returns a Relay, failing tb if it refuses the configuration.
func newRelay(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration, guard scalablebreaker.Guard) *scalablebreaker.Relay {
	tb.Helper()
	r, err := scalablebreaker.NewRelay(db, gw, timeout, guard)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// newGobreaker returns a gobreaker breaker, failing tb if it refuses the
// configuration.
func newGobreaker(tb testing.TB, threshold int, openFor time.Duration) *scalablebreaker.Gobreaker {
	tb.Helper()
	b, err := scalablebreaker.NewGobreaker(threshold, openFor)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// hungCallTimeout is how long each call to a hung gateway waits in the tests
// that count the requests reaching it. The gateway never answers, so every
// call ends at this timeout whatever its length; it must only be long enough
// for the request to reach the gateway on a loaded machine (with -race, 50 ms
// may not be), or the count comes up short.
const hungCallTimeout = time.Second

// paymentStatuses returns how many payments db holds in each status.
func paymentStatuses(tb testing.TB, db *pgxpool.Pool) map[string]int {
	tb.Helper()
	rows, err := db.Query(context.Background(), "SELECT status, count(*) FROM payments GROUP BY status")
	if err != nil {
		tb.Fatalf("count payments: %v", err)
	}
	defer rows.Close()
	statuses := make(map[string]int)
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			tb.Fatalf("count payments: %v", err)
		}
		statuses[status] = n
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("count payments: %v", err)
	}
	return statuses
}

// unsentPayments returns how many payments wait in the outbox.
func unsentPayments(tb testing.TB, db *pgxpool.Pool) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM payment_outbox WHERE sent_at IS NULL").Scan(&n); err != nil {
		tb.Fatalf("count the outbox: %v", err)
	}
	return n
}

func TestNaivePayHammersADeadGateway(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	payments := newNaivePayments(t, db, gw.Client(), hungCallTimeout)
	const paid = 2
	for i := range paid {
		_, err := payments.Pay(context.Background(), fmt.Sprintf("k%d", i), paymentFor(i))
		require.ErrorIs(t, err, context.DeadlineExceeded, "each payment waits out its timeouts")
	}
	assert.EqualValues(t, paid*naivebreaker.Attempts, gw.Requests(), "every try of every payment reaches the dead gateway")
	assert.Empty(t, paymentStatuses(t, db), "and every payment is lost")
}

func TestPayBehindABreakerQueuesDuringAnOutage(t *testing.T) {
	for _, guard := range []struct {
		name string
		new  func(tb testing.TB) scalablebreaker.Guard
	}{
		{"hand-written", func(tb testing.TB) scalablebreaker.Guard { return newBreaker(tb, 3, time.Minute) }},
		{"gobreaker", func(tb testing.TB) scalablebreaker.Guard { return newGobreaker(tb, 3, time.Minute) }},
	} {
		t.Run(guard.name, func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := startGateway(t)
			gw.SetFaults(gatewaytest.Faults{Hang: true})
			breaker := guard.new(t)
			payments := newGuardedPayments(t, db, gw.Client(), hungCallTimeout, breaker)
			for i := range 20 {
				payment, err := payments.Pay(context.Background(), fmt.Sprintf("k%d", i), paymentFor(i))
				require.NoError(t, err, "payment %d is taken", i)
				assert.Equal(t, shop.PaymentQueued, payment.Status)
			}
			assert.EqualValues(t, 3, gw.Requests(), "three calls time out, then the breaker opens and the gateway is left alone")
			assert.Equal(t, scalablebreaker.Open, breaker.State())
			assert.Equal(t, map[string]int{shop.PaymentQueued: 20}, paymentStatuses(t, db), "nothing lost")
			assert.Equal(t, 20, unsentPayments(t, db))
		})
	}
}

func TestRelayChargesEveryQueuedPaymentExactlyOnce(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	const queued = 30
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	payments := newGuardedPayments(t, db, gw.Client(), hungCallTimeout, newBreaker(t, 3, time.Minute))
	for i := range queued {
		_, err := payments.Pay(context.Background(), fmt.Sprintf("k%d", i), paymentFor(i))
		require.NoError(t, err)
	}
	require.Equal(t, queued, unsentPayments(t, db))

	// The gateway is back, but loses two replies after charging: the relay
	// that sent them stops, and the payments are sent again by the next run.
	gw.SetFaults(gatewaytest.Faults{})
	lost := gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true}
	gw.FailNext(lost, lost)
	for run := 1; unsentPayments(t, db) > 0; run++ {
		require.LessOrEqual(t, run, 10, "the outbox drains in a few runs")
		var relays sync.WaitGroup
		for range 3 { // three relays at once, as after a deploy
			relay := newRelay(t, db, gw.Client(), time.Second, newBreaker(t, 3, time.Minute))
			relays.Go(func() {
				relay.SendQueued(context.Background()) // an error leaves the rest for the next run
			})
		}
		relays.Wait()
	}

	charges := gw.Charges()
	assert.Len(t, charges, queued, "every queued payment charged")
	assert.Equal(t, 0, gw.Duplicates(), "none twice")
	assert.Equal(t, map[string]int{shop.PaymentCharged: queued}, paymentStatuses(t, db))
	var chargeIDs []string
	rows, err := db.Query(context.Background(), "SELECT charge_id FROM payments ORDER BY charge_id")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		chargeIDs = append(chargeIDs, id)
	}
	require.NoError(t, rows.Err())
	var made []string
	for _, c := range charges {
		made = append(made, c.ID)
	}
	slices.Sort(made)
	assert.Equal(t, made, chargeIDs, "each payment records the charge the gateway made for it")
}

func TestPayBehindABreakerRetriesAsTheNaiveVersionDoes(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	payments := newGuardedPayments(t, db, gw.Client(), outageTimeout, newBreaker(t, 5, time.Minute))
	unavailable := gatewaytest.Failure{Status: http.StatusServiceUnavailable}
	gw.FailNext(unavailable, unavailable)
	payment, err := payments.Pay(context.Background(), "k", paymentFor(1))
	require.NoError(t, err)
	assert.Equal(t, shop.PaymentCharged, payment.Status, "the third of %d tries went through, as it would for the naive version", naivebreaker.Attempts)
	assert.EqualValues(t, naivebreaker.Attempts, gw.Requests())
	assert.Equal(t, naivebreaker.Attempts, scalablebreaker.Attempts, "one retry policy on both sides: lesson 10 measures the breaker alone")
}

func TestPayBehindABreakerWithoutAnOutboxLosesThePayment(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	payments := newGuardedPayments(t, db, gw.Client(), outageTimeout, newBreaker(t, 3, time.Minute)).WithoutOutbox()
	for i := range 5 {
		payment, err := payments.Pay(context.Background(), fmt.Sprintf("k%d", i), paymentFor(i))
		require.Error(t, err, "payment %d", i)
		assert.Equal(t, shop.PaymentFailed, payment.Status)
	}
	assert.EqualValues(t, 3, gw.Requests(), "the breaker still spares the gateway")
	assert.Zero(t, unsentPayments(t, db), "but nothing is queued: the payments are lost")

}

func TestPayBehindABreakerTakesOverAnExpiredLease(t *testing.T) {
	testExpiredLeaseIsTakenOver(t, func(db *pgxpool.Pool, gw *gateway.Client) payer {
		return newGuardedPayments(t, db, gw, time.Second, newBreaker(t, 3, time.Minute))
	})
}

// BenchmarkPayDuringOutage measures a burst of payments from 10 concurrent
// callers while the gateway hangs: how many requests reach it, how long
// callers wait, and how many payments are lost. Each operation starts with a
// fresh, closed breaker. Every version tries each payment up to 3 times, so
// naive against breaker is the breaker's effect alone; breaker-no-outbox
// against breaker is the outbox's.
func BenchmarkPayDuringOutage(b *testing.B) {
	impls := []struct {
		name string
		new  func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer
	}{
		{"naive", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
			return newNaivePayments(tb, db, gw, outageTimeout)
		}},
		{"breaker", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
			return newGuardedPayments(tb, db, gw, outageTimeout, newBreaker(tb, 5, time.Minute))
		}},
		{"gobreaker", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
			return newGuardedPayments(tb, db, gw, outageTimeout, newGobreaker(tb, 5, time.Minute))
		}},
		{"breaker-no-outbox", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
			return newGuardedPayments(tb, db, gw, outageTimeout, newBreaker(tb, 5, time.Minute)).WithoutOutbox()
		}},
	}
	const callers = 10
	top := 100 // naive at 1,000 payments waits 15 s an operation
	if large() {
		top = 1000
	}
	for _, n := range ladder(10, top) {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("impl=%s/payments=%d", impl.name, n), func(b *testing.B) {
				db := pgtest.ShopClone(b, shop.Small)
				gw := startGateway(b)
				gw.SetFaults(gatewaytest.Faults{Hang: true})
				var lost, made atomic.Int64
				var latencies []time.Duration
				var mu sync.Mutex
				var nextKey atomic.Int64
				for b.Loop() {
					payments := impl.new(b, db, gw.Client())
					work := make(chan int, n)
					for i := range n {
						work <- i
					}
					close(work)
					var workers sync.WaitGroup
					for range callers {
						workers.Go(func() {
							for i := range work {
								key := fmt.Sprintf("pay-%d", nextKey.Add(1))
								start := time.Now()
								_, err := payments.Pay(context.Background(), key, paymentFor(i))
								took := time.Since(start)
								mu.Lock()
								latencies = append(latencies, took)
								mu.Unlock()
								if err != nil {
									lost.Add(1)
								}
								made.Add(1)
							}
						})
					}
					workers.Wait()
				}
				statuses := paymentStatuses(b, db)
				if kept := int64(statuses[shop.PaymentQueued] + statuses[shop.PaymentCharged]); kept+lost.Load() != made.Load() {
					b.Fatalf("%d payments: %d kept and %d lost do not add up", made.Load(), kept, lost.Load())
				}
				b.ReportMetric(float64(gw.Requests())/float64(b.N), "gateway-requests/op")
				b.ReportMetric(100*float64(lost.Load())/float64(made.Load()), "lost-%")
				reportLatencies(b, latencies)
			})
		}
	}
}

// TestPaymentConstructorsRefuseNonsense: every payment constructor of
// lessons 9 and 10 refuses, when it is called, a configuration no payment
// could work with (no database, no gateway, a timeout that fails every call
// or never ends, no breaker), with an error wrapping [shop.ErrInvalidConfig]
// that names the setting and its value; and accepts a sound one.
func TestPaymentConstructorsRefuseNonsense(t *testing.T) {
	db, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never-dialled")
	require.NoError(t, err)
	t.Cleanup(db.Close)
	gw := &gateway.Client{URL: "http://127.0.0.1:1"}
	guard := newBreaker(t, 3, time.Minute)
	type settings struct {
		db      *pgxpool.Pool
		gw      *gateway.Client
		timeout time.Duration
		guard   scalablebreaker.Guard
	}
	constructors := []struct {
		name  string
		takes string // the settings it takes beyond a database and a gateway
		new   func(s settings) error
	}{
		{"naive/retry.NewPayments", "", func(s settings) error {
			_, err := naiveretry.NewPayments(s.db, s.gw)
			return err
		}},
		{"naive/retry.NewRetryingPayments", "", func(s settings) error {
			_, err := naiveretry.NewRetryingPayments(s.db, s.gw)
			return err
		}},
		{"scalable/retry.NewPayments", "", func(s settings) error {
			_, err := scalableretry.NewPayments(s.db, s.gw)
			return err
		}},
		{"naive/breaker.NewPayments", "timeout", func(s settings) error {
			_, err := naivebreaker.NewPayments(s.db, s.gw, s.timeout)
			return err
		}},
		{"scalable/breaker.NewPayments", "timeout breaker", func(s settings) error {
			_, err := scalablebreaker.NewPayments(s.db, s.gw, s.timeout, s.guard)
			return err
		}},
		{"scalable/breaker.NewRelay", "timeout breaker", func(s settings) error {
			_, err := scalablebreaker.NewRelay(s.db, s.gw, s.timeout, s.guard)
			return err
		}},
	}
	sound := settings{db: db, gw: gw, timeout: time.Second, guard: guard}
	bad := []struct {
		name    string
		names   string // what the error must say
		setting string // "" for a database or a gateway, which every constructor takes
		change  func(s *settings)
	}{
		{"no database", "no database", "", func(s *settings) { s.db = nil }},
		{"no gateway", "no gateway", "", func(s *settings) { s.gw = nil }},
		{"zero timeout", "timeout 0s", "timeout", func(s *settings) { s.timeout = 0 }},
		{"negative timeout", "timeout -1ns", "timeout", func(s *settings) { s.timeout = -1 }},
		{"most negative timeout", "timeout -2562047h", "timeout", func(s *settings) { s.timeout = math.MinInt64 }},
		{"endless timeout", "timeout 2562047h", "timeout", func(s *settings) { s.timeout = math.MaxInt64 }},
		{"no breaker", "no breaker", "breaker", func(s *settings) { s.guard = nil }},
		{"nil hand-written breaker", "no breaker", "breaker", func(s *settings) { s.guard = (*scalablebreaker.Breaker)(nil) }},
		{"nil gobreaker", "no breaker", "breaker", func(s *settings) { s.guard = (*scalablebreaker.Gobreaker)(nil) }},
	}
	for _, c := range constructors {
		require.NoError(t, c.new(sound), "%s: a sound configuration", c.name)
		for _, b := range bad {
			if b.setting != "" && !strings.Contains(c.takes, b.setting) {
				continue
			}
			s := sound
			b.change(&s)
			err := c.new(s)
			require.ErrorIs(t, err, shop.ErrInvalidConfig, "%s: %s", c.name, b.name)
			assert.Contains(t, err.Error(), b.names, "%s: %s: the error names the setting", c.name, b.name)
		}
	}
}
