package circuitbreaker

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	scalablebreaker "works-vs-scales/scalable/circuitbreaker"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 10's background work, as the service of lesson 17 runs it: the
// relay sending the outbox on its own, and the reconciler settling the
// payments whose maker died between the charge and its record. This file
// keeps its helpers to itself.

// bgGateway starts a test gateway, closed when the test ends.
func bgGateway(tb testing.TB) *gatewaytest.Server {
	tb.Helper()
	gw := gatewaytest.Start()
	tb.Cleanup(gw.Close)
	return gw
}

// bgGuard returns a breaker that does not open in these tests' few calls.
func bgGuard(tb testing.TB) *scalablebreaker.Breaker {
	tb.Helper()
	b, err := scalablebreaker.NewBreaker(100, time.Minute)
	require.NoError(tb, err)
	return b
}

// bgCharge is user 5's payment of 12.50 EUR, for reference.
func bgCharge(reference string) gateway.ChargeRequest {
	return gateway.ChargeRequest{UserID: 5, AmountCents: 1250, Currency: "EUR", Reference: reference}
}

// bgInsert writes user 5's payment under key, in status, with a lease that
// ends after leaseLeft (negative: it has ended), and queues it in the outbox
// if status is queued. It returns the payment's id.
func bgInsert(tb testing.TB, db *pgxpool.Pool, key, status string, leaseLeft time.Duration) int64 {
	tb.Helper()
	req := bgCharge(key)
	var id int64
	err := db.QueryRow(context.Background(), `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, lease_owner, lease_expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'a process that died', now() + $7 * interval '1 microsecond')
		RETURNING id`, key, req.Reference, req.UserID, req.AmountCents, req.Currency, status, leaseLeft.Microseconds()).Scan(&id)
	require.NoError(tb, err)
	if status == shop.PaymentQueued {
		_, err = db.Exec(context.Background(), `INSERT INTO payment_outbox (payment_id) VALUES ($1)`, id)
		require.NoError(tb, err)
	}
	return id
}

// bgStored returns the status and charge id stored for payment id.
func bgStored(tb testing.TB, db *pgxpool.Pool, id int64) (status, chargeID string) {
	tb.Helper()
	err := db.QueryRow(context.Background(), `SELECT status, coalesce(charge_id, '') FROM payments WHERE id = $1`, id).Scan(&status, &chargeID)
	require.NoError(tb, err)
	return status, chargeID
}

// bgTransport passes every request to the gateway, calling before (if not
// nil) when one leaves and after (if not nil) when its answer is back.
type bgTransport struct{ before, after func() }

func (t bgTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.before != nil {
		t.before()
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && t.after != nil {
		t.after()
	}
	return resp, err
}

func TestReconcilerSettlesStalePaymentsByAskingTheGateway(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := bgGateway(t)
	ctx := context.Background()
	// A process charged this one, then died before recording it.
	charge, err := gw.Client().Charge(ctx, bgCharge("charged"), "charged")
	require.NoError(t, err)
	charged := bgInsert(t, db, "charged", shop.PaymentPending, -time.Second)
	// This one's process died before the gateway charged anything.
	never := bgInsert(t, db, "never", shop.PaymentPending, -time.Second)
	// These are not the reconciler's: a live lease, and a queued payment
	// (the relay's).
	alive := bgInsert(t, db, "alive", shop.PaymentPending, time.Hour)
	queued := bgInsert(t, db, "queued", shop.PaymentQueued, -time.Second)

	reconciler, err := scalablebreaker.NewReconciler(db, gw.Client(), time.Second, bgGuard(t))
	require.NoError(t, err)
	settled, err := reconciler.SettleStale(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, settled)

	status, chargeID := bgStored(t, db, charged)
	assert.Equal(t, shop.PaymentCharged, status, "charged at the gateway: recorded charged")
	assert.Equal(t, charge.ID, chargeID, "with the charge the dead process made")
	status, chargeID = bgStored(t, db, never)
	assert.Equal(t, shop.PaymentFailed, status, "no charge at the gateway: refused, and uncharged")
	assert.Empty(t, chargeID)
	status, _ = bgStored(t, db, alive)
	assert.Equal(t, shop.PaymentPending, status, "a live lease is its owner's")
	status, _ = bgStored(t, db, queued)
	assert.Equal(t, shop.PaymentQueued, status, "a queued payment is the relay's")
	assert.Len(t, gw.Charges(), 1, "the reconciler never charges")
	assert.EqualValues(t, 2, gw.Lookups(), "it asks about the stale payments only")

	// The client comes back with its keys: it hears what happened.
	payments, err := scalablebreaker.NewPayments(db, gw.Client(), time.Second, bgGuard(t))
	require.NoError(t, err)
	again, err := payments.Pay(ctx, "charged", bgCharge("charged"))
	require.NoError(t, err)
	assert.Equal(t, shop.PaymentCharged, again.Status)
	assert.Equal(t, charge.ID, again.ChargeID)
	again, err = payments.Pay(ctx, "never", bgCharge("never"))
	require.NoError(t, err)
	assert.Equal(t, shop.PaymentFailed, again.Status, "refused: the client pays again with a new key")
	assert.Len(t, gw.Charges(), 1, "nothing charged twice, nothing charged behind the client's back")
}

func TestReconcilerGivesBackWhatTheGatewayCannotSettle(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := bgGateway(t)
	ctx := context.Background()
	stale := bgInsert(t, db, "stale", shop.PaymentPending, -time.Second)
	reconciler, err := scalablebreaker.NewReconciler(db, gw.Client(), time.Second, bgGuard(t))
	require.NoError(t, err)

	gw.FailNextLookups(gatewaytest.Failure{Status: http.StatusServiceUnavailable})
	settled, err := reconciler.SettleStale(ctx)
	assert.Error(t, err, "the gateway could not say")
	assert.Zero(t, settled)
	status, _ := bgStored(t, db, stale)
	assert.Equal(t, shop.PaymentPending, status, "not settled on a guess")
	var givenBack bool
	require.NoError(t, db.QueryRow(ctx, `SELECT lease_expires_at <= now() FROM payments WHERE id = $1`, stale).Scan(&givenBack))
	assert.True(t, givenBack, "its lease given back at once, for the next run")

	settled, err = reconciler.SettleStale(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, settled)
	status, _ = bgStored(t, db, stale)
	assert.Equal(t, shop.PaymentFailed, status)
}

func TestReconcilerRecordsAChargeTheDatabaseLostTheRecordOf(t *testing.T) {
	// Lesson 17's fault: the database goes away between the charge and its
	// record. The payment stays pending, the money taken.
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
	gw := bgGateway(t)
	ctx := context.Background()
	client := &gateway.Client{URL: gw.URL(), HTTP: &http.Client{Transport: bgTransport{after: proxy.Down}}}
	payments, err := scalablebreaker.NewPayments(db, client, time.Second, bgGuard(t))
	require.NoError(t, err)
	_, err = payments.Pay(ctx, "lost", bgCharge("lost"))
	require.Error(t, err, "the record failed")
	require.Len(t, gw.Charges(), 1, "after the charge")
	proxy.Up()

	var id int64
	require.NoError(t, db.QueryRow(ctx, `SELECT id FROM payments WHERE idempotency_key = 'lost'`).Scan(&id))
	status, _ := bgStored(t, db, id)
	require.Equal(t, shop.PaymentPending, status, "charged, and the row says nothing of it")
	reconciler, err := scalablebreaker.NewReconciler(db, gw.Client(), time.Second, bgGuard(t))
	require.NoError(t, err)
	settled, err := reconciler.SettleStale(ctx)
	require.NoError(t, err)
	assert.Zero(t, settled, "its lease runs: its maker may still record it")

	// The lease ends (Pay's is twice what a call can take: seconds).
	_, err = db.Exec(ctx, `UPDATE payments SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, id)
	require.NoError(t, err)
	settled, err = reconciler.SettleStale(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, settled)
	status, chargeID := bgStored(t, db, id)
	assert.Equal(t, shop.PaymentCharged, status)
	assert.Equal(t, gw.Charges()[0].ID, chargeID, "charged and recorded")
	assert.Len(t, gw.Charges(), 1)
}

func TestRelayRunFinishesThePaymentAtHandWhenStopped(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := bgGateway(t)
	id := bgInsert(t, db, "queued", shop.PaymentQueued, 0)
	// The relay's charge is held on its way until the test lets it go.
	arrived, release := make(chan struct{}), make(chan struct{})
	client := &gateway.Client{URL: gw.URL(), HTTP: &http.Client{Transport: bgTransport{before: func() {
		close(arrived)
		<-release
	}}}}
	relay, err := scalablebreaker.NewRelay(db, client, time.Minute, bgGuard(t))
	require.NoError(t, err)

	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- relay.Run(ctx, time.Hour, func(err error) { t.Errorf("relay: %v", err) }) }()
	<-arrived // the relay has taken the payment and is charging it
	stop()    // the service shuts down
	select {
	case err := <-ran:
		t.Fatalf("Run returned with a payment half sent: %v", err)
	default:
	}
	close(release)
	require.NoError(t, <-ran)

	status, chargeID := bgStored(t, db, id)
	assert.Equal(t, shop.PaymentCharged, status, "finished, not left charged and queued")
	require.Len(t, gw.Charges(), 1)
	assert.Equal(t, gw.Charges()[0].ID, chargeID)
	var unsent int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM payment_outbox WHERE sent_at IS NULL`).Scan(&unsent))
	assert.Zero(t, unsent)
}

func TestReconcilerAndRelayRunRefuseWhatCannotWork(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	gw := bgGateway(t)
	_, err := scalablebreaker.NewReconciler(nil, gw.Client(), time.Second, bgGuard(t))
	assert.ErrorIs(t, err, shop.ErrInvalidConfig, "no database")
	_, err = scalablebreaker.NewReconciler(db, nil, time.Second, bgGuard(t))
	assert.ErrorIs(t, err, shop.ErrInvalidConfig, "no gateway")
	_, err = scalablebreaker.NewReconciler(db, gw.Client(), 0, bgGuard(t))
	assert.ErrorIs(t, err, shop.ErrInvalidConfig, "no time to call")
	_, err = scalablebreaker.NewReconciler(db, gw.Client(), time.Second, nil)
	assert.ErrorIs(t, err, shop.ErrInvalidConfig, "no breaker")

	reconciler, err := scalablebreaker.NewReconciler(db, gw.Client(), time.Second, bgGuard(t))
	require.NoError(t, err)
	relay, err := scalablebreaker.NewRelay(db, gw.Client(), time.Second, bgGuard(t))
	require.NoError(t, err)
	for _, every := range []time.Duration{0, -time.Second} {
		assert.ErrorIs(t, reconciler.Run(context.Background(), every, nil), shop.ErrInvalidConfig, "every %v", every)
		assert.ErrorIs(t, relay.Run(context.Background(), every, nil), shop.ErrInvalidConfig, "every %v", every)
	}
}
