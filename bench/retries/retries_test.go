package retries

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/retries"
	scalable "works-vs-scales/scalable/retries"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// fastRetries is DefaultPolicy with waits short enough for a test's patience.
var fastRetries = scalable.Policy{
	MaxAttempts:    4,
	BaseDelay:      5 * time.Millisecond,
	MaxDelay:       50 * time.Millisecond,
	MaxElapsed:     5 * time.Second,
	AttemptTimeout: 2 * time.Second,
}

// newRetryPayments returns scalable/retry's Payments, retrying as its
// DefaultPolicy says, failing tb if it refuses the configuration.
func newRetryPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) *scalable.Payments {
	tb.Helper()
	payments, err := scalable.NewPayments(db, gw)
	if err != nil {
		tb.Fatal(err)
	}
	return payments
}

// newFastRetryPayments returns scalable/retry's Payments retrying as
// fastRetries says, failing tb if it refuses the configuration.
func newFastRetryPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) *scalable.Payments {
	tb.Helper()
	fast, err := newRetryPayments(tb, db, gw).WithPolicy(fastRetries)
	if err != nil {
		tb.Fatal(err)
	}
	return fast
}

// newNaiveRetryPayments returns naive/retry's Payments, failing tb if it
// refuses the configuration.
func newNaiveRetryPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) *naive.Payments {
	tb.Helper()
	payments, err := naive.NewPayments(db, gw)
	if err != nil {
		tb.Fatal(err)
	}
	return payments
}

// newRetryingPayments returns naive/retry's RetryingPayments, failing tb if
// it refuses the configuration.
func newRetryingPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) *naive.RetryingPayments {
	tb.Helper()
	payments, err := naive.NewRetryingPayments(db, gw)
	if err != nil {
		tb.Fatal(err)
	}
	return payments
}

// chargedPayments returns how many payments db records as charged.
func chargedPayments(tb testing.TB, db *pgxpool.Pool) int {
	tb.Helper()
	return benchkit.PaymentStatuses(tb, db)[shop.PaymentCharged]
}

func TestPayRetriesTransientFailures(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	failures := []gatewaytest.Failure{
		{Status: http.StatusServiceUnavailable},
		{Reset: true},
		{Status: http.StatusInternalServerError, AfterCharge: true}, // charged, reply lost
	}

	naiveGateway := benchkit.StartGateway(t)
	naiveGateway.FailNext(failures...)
	_, err := newNaiveRetryPayments(t, db, naiveGateway.Client()).Pay(context.Background(), "k-naive", benchkit.PaymentFor(1))
	require.Error(t, err, "naive: one try, one failure")

	gw := benchkit.StartGateway(t)
	gw.FailNext(failures...)
	payment, err := newFastRetryPayments(t, db, gw.Client()).Pay(context.Background(), "k-scalable", benchkit.PaymentFor(2))
	require.NoError(t, err, "scalable: through three failures")
	assert.Equal(t, shop.PaymentCharged, payment.Status)
	assert.Equal(t, 0, gw.Duplicates(), "the retry after the lost reply found the charge by its key")
	assert.Len(t, gw.Charges(), 1)
	assert.Equal(t, 1, chargedPayments(t, db))
}

func TestPayNeverRetriesAClientError(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	gw.FailNext(gatewaytest.Failure{Status: http.StatusBadRequest})
	payment, err := newFastRetryPayments(t, db, gw.Client()).Pay(context.Background(), "k", benchkit.PaymentFor(1))
	var gwErr *gateway.Error
	require.ErrorAs(t, err, &gwErr)
	assert.Equal(t, http.StatusBadRequest, gwErr.StatusCode)
	assert.EqualValues(t, 1, gw.Requests(), "a 400 is sent once")
	assert.Equal(t, shop.PaymentFailed, payment.Status, "and recorded as failed")
}

func TestNaiveRetryByTheUserChargesTwice(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	payments := newNaiveRetryPayments(t, db, gw.Client())
	gw.FailNext(gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true})
	_, err := payments.Pay(context.Background(), "k", benchkit.PaymentFor(1))
	require.Error(t, err, "the user sees an error")
	_, err = payments.Pay(context.Background(), "k", benchkit.PaymentFor(1))
	require.NoError(t, err, "and clicks Pay again")
	assert.Equal(t, 1, gw.Duplicates(), "the naive version paid twice for one order")
	assert.Equal(t, 1, chargedPayments(t, db), "and its records know of one payment")
}

func TestPayOnceForFiftyConcurrentCallsWithOneKey(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	gw.SetFaults(gatewaytest.Faults{Latency: 100 * time.Millisecond}) // the others arrive while the first charges
	payments := newFastRetryPayments(t, db, gw.Client())

	results, errs, _, wait := benchkit.CallTogether(50, func() (shop.Payment, error) {
		return payments.Pay(context.Background(), "double-click", benchkit.PaymentFor(1))
	})
	wait()
	require.Len(t, gw.Charges(), 1, "exactly one charge for fifty calls")
	chargeID := gw.Charges()[0].ID
	succeeded := 0
	for i, err := range errs {
		if err != nil {
			assert.ErrorIs(t, err, scalable.ErrInProgress, "call %d", i)
			continue
		}
		succeeded++
		assert.Equal(t, chargeID, results[i].ChargeID, "call %d got the one charge", i)
	}
	assert.GreaterOrEqual(t, succeeded, 1)
	var rows int
	require.NoError(t, db.QueryRow(context.Background(), "SELECT count(*) FROM payments WHERE idempotency_key = 'double-click'").Scan(&rows))
	assert.Equal(t, 1, rows)

	again, err := payments.Pay(context.Background(), "double-click", benchkit.PaymentFor(1))
	require.NoError(t, err, "a call after the first finished")
	assert.Equal(t, chargeID, again.ChargeID, "returns the first payment")
	different := benchkit.PaymentFor(1)
	different.AmountCents++
	_, err = payments.Pay(context.Background(), "double-click", different)
	assert.ErrorIs(t, err, shop.ErrKeyReused, "the same user's key for a different payment")
	assert.Len(t, gw.Charges(), 1)
}

func TestPayAfterEveryReplyWasLostRecoversTheCharge(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	payments := newFastRetryPayments(t, db, gw.Client())
	lost := gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true}
	gw.FailNext(lost, lost, lost, lost)
	payment, err := payments.Pay(context.Background(), "k", benchkit.PaymentFor(1))
	require.NoError(t, err, "four tries, four lost replies: the gateway is asked what happened to the key")
	require.Len(t, gw.Charges(), 1, "the money was taken once")
	assert.Equal(t, shop.PaymentCharged, payment.Status, "and the payment says so, not failed")
	assert.Equal(t, gw.Charges()[0].ID, payment.ChargeID)
	assert.Equal(t, 1, chargedPayments(t, db))

	again, err := payments.Pay(context.Background(), "k", benchkit.PaymentFor(1))
	require.NoError(t, err, "the user tries again, with the same key")
	assert.Equal(t, payment.ChargeID, again.ChargeID, "and gets the charge made the first time")
	assert.Len(t, gw.Charges(), 1, "not a second one")
}

func TestPayRecordsUnknownWhenTheGatewayCannotTell(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	payments := newFastRetryPayments(t, db, gw.Client())
	lost := gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true}
	gw.FailNext(lost, lost, lost, lost)
	unavailable := gatewaytest.Failure{Status: http.StatusServiceUnavailable}
	gw.FailNextLookups(unavailable, unavailable, unavailable, unavailable)
	payment, err := payments.Pay(context.Background(), "k", benchkit.PaymentFor(1))
	require.Error(t, err, "charged or not, nobody can tell yet")
	assert.Equal(t, shop.PaymentUnknown, payment.Status)
	assert.Equal(t, map[string]int{shop.PaymentUnknown: 1}, benchkit.PaymentStatuses(t, db), "recorded as unknown, not failed")

	payment, err = payments.Pay(context.Background(), "k", benchkit.PaymentFor(1))
	require.NoError(t, err, "the next call with the key reconciles it")
	require.Len(t, gw.Charges(), 1)
	assert.Equal(t, gw.Charges()[0].ID, payment.ChargeID)
	assert.Equal(t, map[string]int{shop.PaymentCharged: 1}, benchkit.PaymentStatuses(t, db))
}

func TestPayTakesOverAnExpiredLease(t *testing.T) {
	benchkit.ExpiredLeaseIsTakenOver(t, func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		return newFastRetryPayments(t, db, gw)
	})
}

func TestPaySurvivesADatabaseResetAfterTheCharge(t *testing.T) {
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
	gw := benchkit.StartGateway(t)
	// The gateway takes 1 s to charge (within fastRetries' 2 s a try): room
	// for the test to reset the database meanwhile, on a loaded machine too.
	gw.SetFaults(gatewaytest.Faults{Latency: time.Second})
	payments := newFastRetryPayments(t, db, gw.Client())

	var payment shop.Payment
	var err error
	var paid sync.WaitGroup
	paid.Go(func() { payment, err = payments.Pay(context.Background(), "k", benchkit.PaymentFor(1)) })
	require.Eventually(t, func() bool { return gw.Requests() == 1 }, 30*time.Second, time.Millisecond, "the charge is on its way")
	proxy.Reset() // the pool's connections die while the gateway charges
	charged := len(gw.Charges())
	paid.Wait()
	require.Zero(t, charged, "the reset came before the charge, or this test proves nothing")

	require.NoError(t, err, "recording the charge was retried on a new connection")
	assert.Equal(t, shop.PaymentCharged, payment.Status)
	assert.Len(t, gw.Charges(), 1)
	assert.Equal(t, 1, chargedPayments(t, db))
}

func TestPayFailsFastWhileTheDatabaseIsDown(t *testing.T) {
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
	gw := benchkit.StartGateway(t)
	payments := newFastRetryPayments(t, db, gw.Client())

	proxy.Down()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := payments.Pay(ctx, "k", benchkit.PaymentFor(1))
	require.Error(t, err, "no database, no payment")
	assert.Empty(t, gw.Charges(), "and no charge the shop could not record")

	proxy.Up()
	payment, err := payments.Pay(context.Background(), "k", benchkit.PaymentFor(1))
	require.NoError(t, err, "the database is back")
	assert.Equal(t, shop.PaymentCharged, payment.Status)
	assert.Len(t, gw.Charges(), 1)
}

// keyedPaymentPaths are this lesson's Pay that take an idempotency key:
// each must keep one user's key to that user (lesson 10's are checked in
// bench/circuitbreaker).
var keyedPaymentPaths = []struct {
	name string
	new  benchkit.NewPayerFunc
}{
	{"naive-retry", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		return newRetryingPayments(tb, db, gw)
	}},
	{"retry", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		return newFastRetryPayments(tb, db, gw)
	}},
}

func TestPaymentKeysBelongToTheirUser(t *testing.T) {
	for _, path := range keyedPaymentPaths {
		t.Run(path.name, func(t *testing.T) { benchkit.PaymentKeysBelongToTheirUser(t, path.new) })
	}
}

// TestPayForAnUnknownUserIsUserNotFound: the scalable version looks the user
// up before it charges (the naive ones charge first: not theirs to check).
func TestPayForAnUnknownUserIsUserNotFound(t *testing.T) {
	benchkit.PayForAnUnknownUserIsUserNotFound(t, keyedPaymentPaths[1].new)
}

// BenchmarkPay measures what retries buy at growing rates of transient
// failure: each operation is one payment, and a failure is the worst kind,
// the gateway charging and then losing its reply. naive-retry is the first fix
// people write (RetryingPayments): retries without an idempotency key.
//
// The copy of the shop is made before the timer starts, with autovacuum off
// on payments; lessons/results/measure.sh runs each implementation in a
// process of its own, in turns, so that none always runs first or right
// after another's copy is dropped.
func BenchmarkPay(b *testing.B) {
	impls := []struct {
		name string
		new  func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer
	}{
		{"naive", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return newNaiveRetryPayments(tb, db, gw)
		}},
		{"naive-retry", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return newRetryingPayments(tb, db, gw)
		}},
		{"scalable", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return newRetryPayments(tb, db, gw)
		}},
	}
	rates := []int{0, 10, 30, 50}
	if testing.Short() {
		rates = rates[:1]
	}
	for _, rate := range rates {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("impl=%s/failures%%=%d", impl.name, rate), func(b *testing.B) {
				db := pgtest.ShopClone(b, shop.Small)
				if _, err := db.Exec(context.Background(), "ALTER TABLE payments SET (autovacuum_enabled = false)"); err != nil {
					b.Fatal(err)
				}
				gw := benchkit.StartGateway(b)
				gw.SetFaults(gatewaytest.Faults{
					FailureRate: float64(rate) / 100,
					Failure:     gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true},
				})
				payments := impl.new(b, db, gw.Client())
				paid, i := 0, 0
				for b.Loop() {
					i++
					_, err := payments.Pay(context.Background(), fmt.Sprintf("pay-%d", i), benchkit.PaymentFor(i))
					if err == nil {
						paid++
					} else if rate == 0 {
						b.Fatalf("payment %d with a healthy gateway: %v", i, err)
					}
				}
				unrecorded := len(gw.Charges()) - gw.Duplicates() - chargedPayments(b, db)
				b.ReportMetric(100*float64(paid)/float64(b.N), "paid-%")
				b.ReportMetric(float64(gw.Requests())/float64(b.N), "attempts/op")
				b.ReportMetric(float64(gw.Lookups())/float64(b.N), "lookups/op")
				b.ReportMetric(100*float64(gw.Duplicates())/float64(b.N), "duplicate-charges-%")
				b.ReportMetric(100*float64(unrecorded)/float64(b.N), "charged-unrecorded-%")
			})
		}
	}
}
