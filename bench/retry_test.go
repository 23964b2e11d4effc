package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naiveretry "works-vs-scales/naive/retries"
	scalablebreaker "works-vs-scales/scalable/circuitbreaker"
	scalableretry "works-vs-scales/scalable/retries"
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

// newRetryPayments returns scalable/retry's Payments, retrying as its
// DefaultPolicy says, failing tb if it refuses the configuration.
func newRetryPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) *scalableretry.Payments {
	tb.Helper()
	payments, err := scalableretry.NewPayments(db, gw)
	if err != nil {
		tb.Fatal(err)
	}
	return payments
}

// newFastRetryPayments returns scalable/retry's Payments retrying as
// fastRetries says, failing tb if it refuses the configuration.
func newFastRetryPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) *scalableretry.Payments {
	tb.Helper()
	fast, err := newRetryPayments(tb, db, gw).WithPolicy(fastRetries)
	if err != nil {
		tb.Fatal(err)
	}
	return fast
}

// newNaiveRetryPayments returns naive/retry's Payments, failing tb if it
// refuses the configuration.
func newNaiveRetryPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) *naiveretry.Payments {
	tb.Helper()
	payments, err := naiveretry.NewPayments(db, gw)
	if err != nil {
		tb.Fatal(err)
	}
	return payments
}

// newRetryingPayments returns naive/retry's RetryingPayments, failing tb if
// it refuses the configuration.
func newRetryingPayments(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) *naiveretry.RetryingPayments {
	tb.Helper()
	payments, err := naiveretry.NewRetryingPayments(db, gw)
	if err != nil {
		tb.Fatal(err)
	}
	return payments
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
	_, err := newNaiveRetryPayments(t, db, naiveGateway.Client()).Pay(context.Background(), "k-naive", paymentFor(1))
	require.Error(t, err, "naive: one try, one failure")

	gw := startGateway(t)
	gw.FailNext(failures...)
	payment, err := newFastRetryPayments(t, db, gw.Client()).Pay(context.Background(), "k-scalable", paymentFor(2))
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
	payment, err := newFastRetryPayments(t, db, gw.Client()).Pay(context.Background(), "k", paymentFor(1))
	var gwErr *gateway.Error
	require.ErrorAs(t, err, &gwErr)
	assert.Equal(t, http.StatusBadRequest, gwErr.StatusCode)
	assert.EqualValues(t, 1, gw.Requests(), "a 400 is sent once")
	assert.Equal(t, shop.PaymentFailed, payment.Status, "and recorded as failed")
}

func TestNaiveRetryByTheUserChargesTwice(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	payments := newNaiveRetryPayments(t, db, gw.Client())
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
	payments := newFastRetryPayments(t, db, gw.Client())

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
	different := paymentFor(1)
	different.AmountCents++
	_, err = payments.Pay(context.Background(), "double-click", different)
	assert.ErrorIs(t, err, shop.ErrKeyReused, "the same user's key for a different payment")
	assert.Len(t, gw.Charges(), 1)
}

func TestPayAfterEveryReplyWasLostRecoversTheCharge(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	payments := newFastRetryPayments(t, db, gw.Client())
	lost := gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true}
	gw.FailNext(lost, lost, lost, lost)
	payment, err := payments.Pay(context.Background(), "k", paymentFor(1))
	require.NoError(t, err, "four tries, four lost replies: the gateway is asked what happened to the key")
	require.Len(t, gw.Charges(), 1, "the money was taken once")
	assert.Equal(t, shop.PaymentCharged, payment.Status, "and the payment says so, not failed")
	assert.Equal(t, gw.Charges()[0].ID, payment.ChargeID)
	assert.Equal(t, 1, chargedPayments(t, db))

	again, err := payments.Pay(context.Background(), "k", paymentFor(1))
	require.NoError(t, err, "the user tries again, with the same key")
	assert.Equal(t, payment.ChargeID, again.ChargeID, "and gets the charge made the first time")
	assert.Len(t, gw.Charges(), 1, "not a second one")
}

func TestPayRecordsUnknownWhenTheGatewayCannotTell(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	payments := newFastRetryPayments(t, db, gw.Client())
	lost := gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true}
	gw.FailNext(lost, lost, lost, lost)
	unavailable := gatewaytest.Failure{Status: http.StatusServiceUnavailable}
	gw.FailNextLookups(unavailable, unavailable, unavailable, unavailable)
	payment, err := payments.Pay(context.Background(), "k", paymentFor(1))
	require.Error(t, err, "charged or not, nobody can tell yet")
	assert.Equal(t, shop.PaymentUnknown, payment.Status)
	assert.Equal(t, map[string]int{shop.PaymentUnknown: 1}, paymentStatuses(t, db), "recorded as unknown, not failed")

	payment, err = payments.Pay(context.Background(), "k", paymentFor(1))
	require.NoError(t, err, "the next call with the key reconciles it")
	require.Len(t, gw.Charges(), 1)
	assert.Equal(t, gw.Charges()[0].ID, payment.ChargeID)
	assert.Equal(t, map[string]int{shop.PaymentCharged: 1}, paymentStatuses(t, db))
}

func TestPayTakesOverAnExpiredLease(t *testing.T) {
	testExpiredLeaseIsTakenOver(t, func(db *pgxpool.Pool, gw *gateway.Client) payer {
		return newFastRetryPayments(t, db, gw)
	})
}

// testExpiredLeaseIsTakenOver checks a keyed payment path against two pending
// claims another process left: one whose lease is live (answered
// shop.ErrInProgress), one whose lease expired after it charged (taken over and
// reconciled with that charge, not charged again).
func testExpiredLeaseIsTakenOver(t *testing.T, newPayments func(*pgxpool.Pool, *gateway.Client) payer) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	payments := newPayments(db, gw.Client())
	ctx := context.Background()
	// A process claimed "crashed" and charged it, then died before recording;
	// another holds "alive", within its lease.
	charge, err := gw.Client().Charge(ctx, paymentFor(1), "crashed")
	require.NoError(t, err)
	const stranded = `
		INSERT INTO payments (idempotency_key, user_id, amount_cents, currency, status, lease_owner, lease_expires_at)
		VALUES ($1, $2, $3, $4, 'pending', 'another process', now() + $5::interval)`
	_, err = db.Exec(ctx, stranded, "crashed", paymentFor(1).UserID, paymentFor(1).AmountCents, paymentFor(1).Currency, "-1 second")
	require.NoError(t, err)
	_, err = db.Exec(ctx, stranded, "alive", paymentFor(2).UserID, paymentFor(2).AmountCents, paymentFor(2).Currency, "1 hour")
	require.NoError(t, err)

	_, err = payments.Pay(ctx, "alive", paymentFor(2))
	assert.ErrorIs(t, err, shop.ErrInProgress, "a live lease is its owner's")
	payment, err := payments.Pay(ctx, "crashed", paymentFor(1))
	require.NoError(t, err, "an expired lease is taken over, not trusted for ever")
	assert.Equal(t, charge.ID, payment.ChargeID, "and reconciled with the charge the dead process made")
	assert.Len(t, gw.Charges(), 1, "without charging again")
	assert.Equal(t, map[string]int{shop.PaymentCharged: 1, shop.PaymentPending: 1}, paymentStatuses(t, db))
}

func TestPaySurvivesADatabaseResetAfterTheCharge(t *testing.T) {
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
	gw := startGateway(t)
	// The gateway takes 1 s to charge (within fastRetries' 2 s a try): room
	// for the test to reset the database meanwhile, on a loaded machine too.
	gw.SetFaults(gatewaytest.Faults{Latency: time.Second})
	payments := newFastRetryPayments(t, db, gw.Client())

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
	payments := newFastRetryPayments(t, db, gw.Client())

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

// keyedPaymentPaths are every Pay that takes an idempotency key: each must
// keep one user's key to that user.
var keyedPaymentPaths = []struct {
	name string
	new  func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer
}{
	{"naive-retry", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
		return newRetryingPayments(tb, db, gw)
	}},
	{"retry", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
		return newFastRetryPayments(tb, db, gw)
	}},
	{"naive-breaker", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
		return newNaivePayments(tb, db, gw, time.Second)
	}},
	{"breaker", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
		return newGuardedPayments(tb, db, gw, time.Second, newBreaker(tb, 3, time.Minute))
	}},
}

func TestPaymentKeysBelongToTheirUser(t *testing.T) {
	for _, path := range keyedPaymentPaths {
		t.Run(path.name, func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := startGateway(t)
			payments := path.new(t, db, gw.Client())
			ctx := context.Background()
			first := gateway.ChargeRequest{UserID: 5, AmountCents: 1000, Currency: "EUR", Reference: "order-5"}
			other := gateway.ChargeRequest{UserID: 6, AmountCents: 777, Currency: "USD", Reference: "order-6"}

			paid5, err := payments.Pay(ctx, "k1", first)
			require.NoError(t, err)
			paid6, err := payments.Pay(ctx, "k1", other)
			require.NoError(t, err, "user 6's k1 is user 6's own key")
			assert.EqualValues(t, 6, paid6.UserID, "not user 5's payment")
			assert.EqualValues(t, 777, paid6.AmountCents)
			assert.NotEqual(t, paid5.ChargeID, paid6.ChargeID, "a charge of its own")
			require.Len(t, gw.Charges(), 2)
			assert.EqualValues(t, 6, gw.Charges()[1].UserID, "the gateway charged user 6, not user 5's charge again")

			again, err := payments.Pay(ctx, "k1", first)
			require.NoError(t, err, "the same request again")
			assert.Equal(t, paid5.ChargeID, again.ChargeID)

			_, err = payments.Pay(ctx, "k1", gateway.ChargeRequest{UserID: 5, AmountCents: 777, Currency: "USD", Reference: "order-5"})
			assert.ErrorIs(t, err, shop.ErrKeyReused, "user 5's k1 for a different payment")
			_, err = payments.Pay(ctx, "", first)
			assert.ErrorIs(t, err, shop.ErrNoIdempotencyKey)
			assert.Len(t, gw.Charges(), 2, "neither refused call charged")
			assert.Equal(t, 2, chargedPayments(t, db))
		})
	}
}

func TestPayForAnUnknownUserIsUserNotFound(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	for _, path := range keyedPaymentPaths { // the naive versions charge first: not theirs to check
		if path.name != "retry" && path.name != "breaker" {
			continue
		}
		t.Run(path.name, func(t *testing.T) {
			gw := startGateway(t)
			for _, userID := range []int64{1 << 40, -1, 0} {
				req := gateway.ChargeRequest{UserID: userID, AmountCents: 1000, Currency: "EUR", Reference: "order-1"}
				_, err := path.new(t, db, gw.Client()).Pay(context.Background(), "k", req)
				assert.ErrorIs(t, err, shop.ErrUserNotFound, "user %d", userID)
			}
			assert.Empty(t, gw.Charges(), "no one charged")
		})
	}
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
		assert.True(t, scalablebreaker.IsOutage(err), "breaker.IsOutage(%v)", err)
		assert.False(t, gateway.IsClientError(err), "gateway.IsClientError(%v)", err)
	}
	for _, err := range refusals {
		assert.True(t, gateway.IsClientError(err), "gateway.IsClientError(%v)", err)
		assert.False(t, gateway.IsOutage(err) || scalableretry.IsTransient(err) || scalablebreaker.IsOutage(err), "%v", err)
	}
	for _, err := range neither {
		assert.False(t, gateway.IsClientError(err) || gateway.IsOutage(err) || scalableretry.IsTransient(err) || scalablebreaker.IsOutage(err), "%v", err)
	}
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
		new  func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer
	}{
		{"naive", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
			return newNaiveRetryPayments(tb, db, gw)
		}},
		{"naive-retry", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
			return newRetryingPayments(tb, db, gw)
		}},
		{"scalable", func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) payer {
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
				gw := startGateway(b)
				gw.SetFaults(gatewaytest.Faults{
					FailureRate: float64(rate) / 100,
					Failure:     gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true},
				})
				payments := impl.new(b, db, gw.Client())
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
				b.ReportMetric(float64(gw.Lookups())/float64(b.N), "lookups/op")
				b.ReportMetric(100*float64(gw.Duplicates())/float64(b.N), "duplicate-charges-%")
				b.ReportMetric(100*float64(unrecorded)/float64(b.N), "charged-unrecorded-%")
			})
		}
	}
}
