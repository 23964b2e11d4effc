package circuitbreaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/circuitbreaker"
	naiveretry "works-vs-scales/naive/retries"
	scalable "works-vs-scales/scalable/circuitbreaker"
	scalableretry "works-vs-scales/scalable/retries"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// outageTimeout is how long each call to a hung gateway waits, in lesson 10.
const outageTimeout = 50 * time.Millisecond

// newBreaker returns a hand-written breaker, failing tb if it refuses the
// configuration.
func newBreaker(tb testing.TB, threshold int, openFor time.Duration) *scalable.Breaker {
	tb.Helper()
	b, err := scalable.NewBreaker(threshold, openFor)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// newNaivePayments returns naive/breaker's Payments, failing tb if it
// refuses the configuration.
func newNaivePayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) *naive.Payments {
	tb.Helper()
	p, err := naive.NewPayments(db, gw, timeout)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// newGuardedPayments returns scalable/breaker's Payments, failing tb if it
// refuses the configuration.
func newGuardedPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration, guard scalable.Guard) *scalable.Payments {
	tb.Helper()
	p, err := scalable.NewPayments(db, gw, timeout, guard)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// newRelay returns a Relay, failing tb if it refuses the configuration.
func newRelay(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration, guard scalable.Guard) *scalable.Relay {
	tb.Helper()
	r, err := scalable.NewRelay(db, gw, timeout, guard)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// newGobreaker returns a gobreaker breaker, failing tb if it refuses the
// configuration.
func newGobreaker(tb testing.TB, threshold int, openFor time.Duration) *scalable.Gobreaker {
	tb.Helper()
	b, err := scalable.NewGobreaker(threshold, openFor)
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
	gw := benchkit.StartGateway(t)
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	payments := newNaivePayments(t, db, gw.Client(), hungCallTimeout)
	const paid = 2
	for i := range paid {
		_, err := payments.Pay(context.Background(), fmt.Sprintf("k%d", i), benchkit.PaymentFor(i))
		require.ErrorIs(t, err, context.DeadlineExceeded, "each payment waits out its timeouts")
	}
	assert.EqualValues(t, paid*naive.Attempts, gw.Requests(), "every try of every payment reaches the dead gateway")
	assert.Empty(t, benchkit.PaymentStatuses(t, db), "and every payment is lost")
}

func TestPayBehindABreakerQueuesDuringAnOutage(t *testing.T) {
	for _, guard := range []struct {
		name string
		new  func(tb testing.TB) scalable.Guard
	}{
		{"hand-written", func(tb testing.TB) scalable.Guard { return newBreaker(tb, 3, time.Minute) }},
		{"gobreaker", func(tb testing.TB) scalable.Guard { return newGobreaker(tb, 3, time.Minute) }},
	} {
		t.Run(guard.name, func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := benchkit.StartGateway(t)
			gw.SetFaults(gatewaytest.Faults{Hang: true})
			breaker := guard.new(t)
			payments := newGuardedPayments(t, db, gw.Client(), hungCallTimeout, breaker)
			for i := range 20 {
				payment, err := payments.Pay(context.Background(), fmt.Sprintf("k%d", i), benchkit.PaymentFor(i))
				require.NoError(t, err, "payment %d is taken", i)
				assert.Equal(t, shop.PaymentQueued, payment.Status)
			}
			assert.EqualValues(t, 3, gw.Requests(), "three calls time out, then the breaker opens and the gateway is left alone")
			assert.Equal(t, scalable.Open, breaker.State())
			assert.Equal(t, map[string]int{shop.PaymentQueued: 20}, benchkit.PaymentStatuses(t, db), "nothing lost")
			assert.Equal(t, 20, unsentPayments(t, db))
		})
	}
}

func TestRelayChargesEveryQueuedPaymentExactlyOnce(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	const queued = 30
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	payments := newGuardedPayments(t, db, gw.Client(), hungCallTimeout, newBreaker(t, 3, time.Minute))
	for i := range queued {
		_, err := payments.Pay(context.Background(), fmt.Sprintf("k%d", i), benchkit.PaymentFor(i))
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
	assert.Equal(t, map[string]int{shop.PaymentCharged: queued}, benchkit.PaymentStatuses(t, db))
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
	gw := benchkit.StartGateway(t)
	// The gateway answers every try at once (503, 503, then the charge): no
	// try is meant to time out, so none may. With outageTimeout's 50 ms a
	// try's round trip under -race on a busy machine timed out, and the
	// payment was queued instead of charged.
	const noHang = time.Hour
	payments := newGuardedPayments(t, db, gw.Client(), noHang, newBreaker(t, 5, time.Minute))
	unavailable := gatewaytest.Failure{Status: http.StatusServiceUnavailable}
	gw.FailNext(unavailable, unavailable)
	payment, err := payments.Pay(context.Background(), "k", benchkit.PaymentFor(1))
	require.NoError(t, err)
	assert.Equal(t, shop.PaymentCharged, payment.Status, "the third of %d tries went through, as it would for the naive version", naive.Attempts)
	assert.EqualValues(t, naive.Attempts, gw.Requests())
	assert.Equal(t, naive.Attempts, scalable.Attempts, "one retry policy on both sides: lesson 10 measures the breaker alone")
}

func TestPayBehindABreakerWithoutAnOutboxLosesThePayment(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	payments := newGuardedPayments(t, db, gw.Client(), outageTimeout, newBreaker(t, 3, time.Minute)).WithoutOutbox()
	for i := range 5 {
		payment, err := payments.Pay(context.Background(), fmt.Sprintf("k%d", i), benchkit.PaymentFor(i))
		require.Error(t, err, "payment %d", i)
		assert.Equal(t, shop.PaymentFailed, payment.Status)
	}
	assert.EqualValues(t, 3, gw.Requests(), "the breaker still spares the gateway")
	assert.Zero(t, unsentPayments(t, db), "but nothing is queued: the payments are lost")

}

func TestPayBehindABreakerTakesOverAnExpiredLease(t *testing.T) {
	benchkit.ExpiredLeaseIsTakenOver(t, func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		return newGuardedPayments(t, db, gw, time.Second, newBreaker(t, 3, time.Minute))
	})
}

// BenchmarkPayDuringOutage measures a burst of payments from 10 concurrent
// callers while the gateway hangs: how many requests reach it, how long
// callers wait, and how many payments are lost. Each operation starts with a
// fresh, closed breaker. Every version tries each payment up to 3 times, so
// naive against breaker is the breaker's effect alone; breaker-no-outbox
// keyedPaymentPaths are this lesson's Pay that take an idempotency key:
// each must keep one user's key to that user.
var keyedPaymentPaths = []struct {
	name string
	new  benchkit.NewPayerFunc
}{
	{"naive-breaker", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		return newNaivePayments(tb, db, gw, time.Second)
	}},
	{"breaker", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		return newGuardedPayments(tb, db, gw, time.Second, newBreaker(tb, 3, time.Minute))
	}},
}

func TestPaymentKeysBelongToTheirUser(t *testing.T) {
	for _, path := range keyedPaymentPaths {
		t.Run(path.name, func(t *testing.T) { benchkit.PaymentKeysBelongToTheirUser(t, path.new) })
	}
}

// TestPayForAnUnknownUserIsUserNotFound: the scalable version looks the user
// up before it charges (the naive one charges first: not its to check).
func TestPayForAnUnknownUserIsUserNotFound(t *testing.T) {
	benchkit.PayForAnUnknownUserIsUserNotFound(t, keyedPaymentPaths[1].new)
}

// TestPayBehindABreakerRefusesAKeyReusedForAnotherReference: a key the user
// paid order-42 with, sent again for order-43 at the same amount, is
// shop.ErrKeyReused, and nothing more is charged. It answered order-42's
// payment, charged: the client took order-43 as paid, and no money was
// taken for it. (Lesson 9's Pay stores no reference: a key there is an
// amount and a currency.)
func TestPayBehindABreakerRefusesAKeyReusedForAnotherReference(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	payments := newGuardedPayments(t, db, gw.Client(), time.Second, newBreaker(t, 3, time.Minute))
	ctx := context.Background()
	paid, err := payments.Pay(ctx, "k1", gateway.ChargeRequest{UserID: 5, AmountCents: 1000, Currency: "EUR", Reference: "order-42"})
	require.NoError(t, err)
	require.Equal(t, shop.PaymentCharged, paid.Status)
	got, err := payments.Pay(ctx, "k1", gateway.ChargeRequest{UserID: 5, AmountCents: 1000, Currency: "EUR", Reference: "order-43"})
	require.ErrorIs(t, err, shop.ErrKeyReused, "order-43 answered with order-42's payment %+v", got)
	again, err := payments.Pay(ctx, "k1", gateway.ChargeRequest{UserID: 5, AmountCents: 1000, Currency: "EUR", Reference: "order-42"})
	require.NoError(t, err, "order-42's retry")
	require.Equal(t, paid.ChargeID, again.ChargeID)
	require.Len(t, gw.Charges(), 1)
}

// TestGatewayErrorsHaveOneVocabulary checks that retrying, the breaker and the
// gateway client read every failure alike: what retry calls transient the
// breaker counts as an outage, and a client error is neither.
func TestGatewayErrorsHaveOneVocabulary(t *testing.T) {
	status := func(code int) error { return fmt.Errorf("pay: %w", &gateway.Error{StatusCode: code}) }
	outages := []error{
		status(http.StatusInternalServerError), status(http.StatusBadGateway), status(http.StatusServiceUnavailable),
		status(http.StatusRequestTimeout), status(http.StatusTooManyRequests),
		context.DeadlineExceeded, io.EOF, io.ErrUnexpectedEOF,
		fmt.Errorf("write: %w", syscall.EPIPE), fmt.Errorf("read: %w", syscall.ECONNRESET), fmt.Errorf("dial: %w", syscall.ECONNREFUSED),
		&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route to host")},
	}
	refusals := []error{status(http.StatusBadRequest), status(http.StatusNotFound), status(http.StatusConflict), status(http.StatusUnprocessableEntity)}
	neither := []error{nil, context.Canceled, fmt.Errorf("charge: %w", context.Canceled), errors.New("invalid currency")}
	for _, err := range outages {
		assert.True(t, gateway.IsOutage(err), "gateway.IsOutage(%v)", err)
		assert.True(t, scalableretry.IsTransient(err), "retry.IsTransient(%v)", err)
		assert.True(t, scalable.IsOutage(err), "breaker.IsOutage(%v)", err)
		assert.False(t, gateway.IsClientError(err), "gateway.IsClientError(%v)", err)
	}
	for _, err := range refusals {
		assert.True(t, gateway.IsClientError(err), "gateway.IsClientError(%v)", err)
		assert.False(t, gateway.IsOutage(err) || scalableretry.IsTransient(err) || scalable.IsOutage(err), "%v", err)
	}
	for _, err := range neither {
		assert.False(t, gateway.IsClientError(err) || gateway.IsOutage(err) || scalableretry.IsTransient(err) || scalable.IsOutage(err), "%v", err)
	}
}

// against breaker is the outbox's.
func BenchmarkPayDuringOutage(b *testing.B) {
	impls := []struct {
		name string
		new  func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer
	}{
		{"naive", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return newNaivePayments(tb, db, gw, outageTimeout)
		}},
		{"breaker", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return newGuardedPayments(tb, db, gw, outageTimeout, newBreaker(tb, 5, time.Minute))
		}},
		{"gobreaker", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return newGuardedPayments(tb, db, gw, outageTimeout, newGobreaker(tb, 5, time.Minute))
		}},
		{"breaker-no-outbox", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return newGuardedPayments(tb, db, gw, outageTimeout, newBreaker(tb, 5, time.Minute)).WithoutOutbox()
		}},
	}
	const callers = 10
	top := 100 // naive at 1,000 payments waits 15 s an operation
	if benchkit.Large() {
		top = 1000
	}
	for _, n := range benchkit.Ladder(10, top) {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("impl=%s/payments=%d", impl.name, n), func(b *testing.B) {
				db := pgtest.ShopClone(b, shop.Small)
				gw := benchkit.StartGateway(b)
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
								_, err := payments.Pay(context.Background(), key, benchkit.PaymentFor(i))
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
				statuses := benchkit.PaymentStatuses(b, db)
				if kept := int64(statuses[shop.PaymentQueued] + statuses[shop.PaymentCharged]); kept+lost.Load() != made.Load() {
					b.Fatalf("%d payments: %d kept and %d lost do not add up", made.Load(), kept, lost.Load())
				}
				b.ReportMetric(float64(gw.Requests())/float64(b.N), "gateway-requests/op")
				b.ReportMetric(100*float64(lost.Load())/float64(made.Load()), "lost-%")
				benchkit.ReportLatencies(b, latencies)
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
		guard   scalable.Guard
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
			_, err := naive.NewPayments(s.db, s.gw, s.timeout)
			return err
		}},
		{"scalable/breaker.NewPayments", "timeout breaker", func(s settings) error {
			_, err := scalable.NewPayments(s.db, s.gw, s.timeout, s.guard)
			return err
		}},
		{"scalable/breaker.NewRelay", "timeout breaker", func(s settings) error {
			_, err := scalable.NewRelay(s.db, s.gw, s.timeout, s.guard)
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
		{"nil hand-written breaker", "no breaker", "breaker", func(s *settings) { s.guard = (*scalable.Breaker)(nil) }},
		{"nil gobreaker", "no breaker", "breaker", func(s *settings) { s.guard = (*scalable.Gobreaker)(nil) }},
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
