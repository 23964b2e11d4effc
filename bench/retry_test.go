package bench

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

	"works-vs-scales/internal/pgtest"
	naiveretry "works-vs-scales/naive/retry"
	scalableretry "works-vs-scales/scalable/retry"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// payer is what lesson 9's two versions do: pay once per key.
type payer interface {
	Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error)
}

// startGateway starts a payment gateway for one test, stopped at its end.
func startGateway(tb testing.TB) *gatewaytest.Server {
	gw := gatewaytest.Start()
	tb.Cleanup(gw.Close)
	return gw
}

// fastRetries is DefaultPolicy with waits short enough for a test's patience.
var fastRetries = scalableretry.Policy{
	MaxAttempts:    4,
	BaseDelay:      5 * time.Millisecond,
	MaxDelay:       50 * time.Millisecond,
	MaxElapsed:     5 * time.Second,
	AttemptTimeout: 2 * time.Second,
}

// paymentFor returns the charge of payment number i: a user of the small shop
// and a reference of its own.
func paymentFor(i int) gateway.ChargeRequest {
	return gateway.ChargeRequest{UserID: int64(i%100 + 1), AmountCents: int64(1000 + i), Currency: "EUR", Reference: fmt.Sprintf("order-%d", i)}
}

// chargedPayments returns how many payments db records as charged.
func chargedPayments(tb testing.TB, db *pgxpool.Pool) int {
	tb.Helper()
	return paymentStatuses(tb, db)[shop.PaymentCharged]
}

func TestPayRetriesTransientFailures(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	failures := []gatewaytest.Failure{
		{Status: http.StatusServiceUnavailable},
		{Reset: true},
		{Status: http.StatusInternalServerError, AfterCharge: true}, // charged, reply lost
	}

	naiveGateway := startGateway(t)
	naiveGateway.FailNext(failures...)
	_, err := naiveretry.NewPayments(db, naiveGateway.Client()).Pay(context.Background(), "k-naive", paymentFor(1))
	require.Error(t, err, "naive: one try, one failure")

	gw := startGateway(t)
	gw.FailNext(failures...)
	payment, err := scalableretry.NewPayments(db, gw.Client()).WithPolicy(fastRetries).Pay(context.Background(), "k-scalable", paymentFor(2))
	require.NoError(t, err, "scalable: through three failures")
	assert.Equal(t, shop.PaymentCharged, payment.Status)
	assert.Equal(t, 0, gw.Duplicates(), "the retry after the lost reply found the charge by its key")
	assert.Len(t, gw.Charges(), 1)
	assert.Equal(t, 1, chargedPayments(t, db))
}

func TestPayNeverRetriesAClientError(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	gw.FailNext(gatewaytest.Failure{Status: http.StatusBadRequest})
	payment, err := scalableretry.NewPayments(db, gw.Client()).WithPolicy(fastRetries).Pay(context.Background(), "k", paymentFor(1))
	var gwErr *gateway.Error
	require.ErrorAs(t, err, &gwErr)
	assert.Equal(t, http.StatusBadRequest, gwErr.StatusCode)
	assert.EqualValues(t, 1, gw.Requests(), "a 400 is sent once")
	assert.Equal(t, shop.PaymentFailed, payment.Status, "and recorded as failed")
}

func TestNaiveRetryByTheUserChargesTwice(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	payments := naiveretry.NewPayments(db, gw.Client())
	gw.FailNext(gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true})
	_, err := payments.Pay(context.Background(), "k", paymentFor(1))
	require.Error(t, err, "the user sees an error")
	_, err = payments.Pay(context.Background(), "k", paymentFor(1))
	require.NoError(t, err, "and clicks Pay again")
	assert.Equal(t, 1, gw.Duplicates(), "the naive version paid twice for one order")
	assert.Equal(t, 1, chargedPayments(t, db), "and its records know of one payment")
}

func TestPayOnceForFiftyConcurrentCallsWithOneKey(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	gw.SetFaults(gatewaytest.Faults{Latency: 100 * time.Millisecond}) // the others arrive while the first charges
	payments := scalableretry.NewPayments(db, gw.Client()).WithPolicy(fastRetries)

	results, errs, _, wait := callTogether(50, func() (shop.Payment, error) {
		return payments.Pay(context.Background(), "double-click", paymentFor(1))
	})
	wait()
	require.Len(t, gw.Charges(), 1, "exactly one charge for fifty calls")
	chargeID := gw.Charges()[0].ID
	succeeded := 0
	for i, err := range errs {
		if err != nil {
			assert.ErrorIs(t, err, scalableretry.ErrInProgress, "call %d", i)
			continue
		}
		succeeded++
		assert.Equal(t, chargeID, results[i].ChargeID, "call %d got the one charge", i)
	}
	assert.GreaterOrEqual(t, succeeded, 1)
	var rows int
	require.NoError(t, db.QueryRow(context.Background(), "SELECT count(*) FROM payments WHERE idempotency_key = 'double-click'").Scan(&rows))
	assert.Equal(t, 1, rows)

	again, err := payments.Pay(context.Background(), "double-click", paymentFor(1))
	require.NoError(t, err, "a call after the first finished")
	assert.Equal(t, chargeID, again.ChargeID, "returns the first payment")
	_, err = payments.Pay(context.Background(), "double-click", paymentFor(2))
	assert.ErrorIs(t, err, scalableretry.ErrKeyReused)
	assert.Len(t, gw.Charges(), 1)
}

func TestPayAfterEveryReplyWasLostRecoversTheCharge(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	payments := scalableretry.NewPayments(db, gw.Client()).WithPolicy(fastRetries)
	lost := gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true}
	gw.FailNext(lost, lost, lost, lost)
	payment, err := payments.Pay(context.Background(), "k", paymentFor(1))
	require.Error(t, err, "four tries, four lost replies")
	assert.Equal(t, shop.PaymentFailed, payment.Status)
	require.Len(t, gw.Charges(), 1, "the money was taken once")

	payment, err = payments.Pay(context.Background(), "k", paymentFor(1))
	require.NoError(t, err, "the user tries again, with the same key")
	assert.Equal(t, gw.Charges()[0].ID, payment.ChargeID, "and gets the charge made the first time")
	assert.Len(t, gw.Charges(), 1, "not a second one")
	assert.Equal(t, 1, chargedPayments(t, db))
}

func TestPaySurvivesADatabaseResetAfterTheCharge(t *testing.T) {
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
	gw := startGateway(t)
	// The gateway takes 1 s to charge (within fastRetries' 2 s a try): room
	// for the test to reset the database meanwhile, on a loaded machine too.
	gw.SetFaults(gatewaytest.Faults{Latency: time.Second})
	payments := scalableretry.NewPayments(db, gw.Client()).WithPolicy(fastRetries)

	var payment shop.Payment
	var err error
	var paid sync.WaitGroup
	paid.Go(func() { payment, err = payments.Pay(context.Background(), "k", paymentFor(1)) })
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
	gw := startGateway(t)
	payments := scalableretry.NewPayments(db, gw.Client()).WithPolicy(fastRetries)

	proxy.Down()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := payments.Pay(ctx, "k", paymentFor(1))
	require.Error(t, err, "no database, no payment")
	assert.Empty(t, gw.Charges(), "and no charge the shop could not record")

	proxy.Up()
	payment, err := payments.Pay(context.Background(), "k", paymentFor(1))
	require.NoError(t, err, "the database is back")
	assert.Equal(t, shop.PaymentCharged, payment.Status)
	assert.Len(t, gw.Charges(), 1)
}

// BenchmarkPay measures what retries buy at growing rates of transient
// failure: each operation is one payment, and a failure is the worst kind,
// the gateway charging and then losing its reply. naive-retry is the first fix
// people write (RetryingPayments): retries without an idempotency key.
func BenchmarkPay(b *testing.B) {
	impls := []struct {
		name string
		new  func(db *pgxpool.Pool, gw *gateway.Client) payer
	}{
		{"naive", func(db *pgxpool.Pool, gw *gateway.Client) payer { return naiveretry.NewPayments(db, gw) }},
		{"naive-retry", func(db *pgxpool.Pool, gw *gateway.Client) payer { return naiveretry.NewRetryingPayments(db, gw) }},
		{"scalable", func(db *pgxpool.Pool, gw *gateway.Client) payer { return scalableretry.NewPayments(db, gw) }},
	}
	rates := []int{0, 10, 30, 50}
	if testing.Short() {
		rates = rates[:1]
	}
	for _, rate := range rates {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("impl=%s/failures%%=%d", impl.name, rate), func(b *testing.B) {
				db := pgtest.ShopClone(b, shop.Small)
				gw := startGateway(b)
				gw.SetFaults(gatewaytest.Faults{
					FailureRate: float64(rate) / 100,
					Failure:     gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true},
				})
				payments := impl.new(db, gw.Client())
				paid, i := 0, 0
				for b.Loop() {
					i++
					_, err := payments.Pay(context.Background(), fmt.Sprintf("pay-%d", i), paymentFor(i))
					if err == nil {
						paid++
					} else if rate == 0 {
						b.Fatalf("payment %d with a healthy gateway: %v", i, err)
					}
				}
				unrecorded := len(gw.Charges()) - gw.Duplicates() - chargedPayments(b, db)
				b.ReportMetric(100*float64(paid)/float64(b.N), "paid-%")
				b.ReportMetric(float64(gw.Requests())/float64(b.N), "attempts/op")
				b.ReportMetric(100*float64(gw.Duplicates())/float64(b.N), "duplicate-charges-%")
				b.ReportMetric(100*float64(unrecorded)/float64(b.N), "charged-unrecorded-%")
			})
		}
	}
}
