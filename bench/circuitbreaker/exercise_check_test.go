package circuitbreaker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	scalable "works-vs-scales/scalable/circuitbreaker"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 10's exercise, in exercises/circuitbreaker. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise10, is in exercise_test.go, behind the exercise tag.

type newTimedPayerFunc func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer

// checkExercise10 says what is still wrong with an answer to lesson 10's
// exercise, or nil when it is done: 20 payments into a hung gateway send it at
// most 10 requests and are all kept, then charged once each by the lesson's
// relay when the gateway is back.
func checkExercise10(t *testing.T, newPayments newTimedPayerFunc) error {
	const payments, maxRequests = 20, 10
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	answer := newPayments(db, gw.Client(), outageTimeout)
	var failed []error
	for i := range payments {
		if _, err := answer.Pay(context.Background(), fmt.Sprintf("k%d", i), benchkit.PaymentFor(i)); err != nil {
			failed = append(failed, err)
		}
	}
	requests := gw.Requests()
	if requests > maxRequests {
		return fmt.Errorf("%d requests reached the hung gateway for %d payments: each waited out its timeout; put a breaker in front of the gateway, which opens after a few failures and stops calling it (at most %d requests)",
			requests, payments, maxRequests)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d payments failed while the gateway was down, the first with %v: a payment the breaker stops is lost; queue it in the outbox instead (payment_outbox, in the same transaction as its row)",
			len(failed), payments, failed[0])
	}
	if statuses := benchkit.PaymentStatuses(t, db); statuses[shop.PaymentQueued] != payments {
		return fmt.Errorf("the payments table holds %v: want %d payments queued", statuses, payments)
	}
	gw.SetFaults(gatewaytest.Faults{})
	relay := newRelay(t, db, gw.Client(), time.Second, newBreaker(t, 3, time.Minute))
	if _, err := relay.SendQueued(context.Background()); err != nil {
		return fmt.Errorf("the lesson's relay, on your outbox: %w", err)
	}
	if charges, duplicates := len(gw.Charges()), gw.Duplicates(); charges != payments || duplicates != 0 {
		return fmt.Errorf("the relay made %d charges (%d duplicates) for %d queued payments", charges, duplicates, payments)
	}
	t.Logf("%d payments into a hung gateway: %d requests reached it, %d queued; then the relay charged each once", payments, requests, payments)
	return nil
}

func TestExercise10CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
		return newNaivePayments(t, db, gw, timeout)
	})
	require.ErrorContains(t, err, "60 requests reached the hung gateway")
	t.Log(err)
}

func TestExercise10CheckFailsOnWrongAnswers(t *testing.T) {
	t.Run("an outbox without a breaker", func(t *testing.T) {
		err := checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
			return newGuardedPayments(t, db, gw, timeout, alwaysClosed{})
		})
		require.ErrorContains(t, err, "60 requests reached the hung gateway for 20 payments")
		t.Log(err)
	})
	t.Run("a breaker without an outbox", func(t *testing.T) {
		err := checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
			return &breakerOnlyPayments{db: db, gateway: gw, timeout: timeout, breaker: newBreaker(t, 3, time.Minute)}
		})
		require.ErrorContains(t, err, "20 of 20 payments failed while the gateway was down")
		t.Log(err)
	})
}

func TestExercise10CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
		return newGuardedPayments(t, db, gw, timeout, newBreaker(t, 3, time.Minute))
	}))
}

// alwaysClosed is a wrong answer to exercise 10, as the lesson's Payments'
// guard: no breaker, so every payment waits out its timeout on a hung
// gateway before it is queued.
type alwaysClosed struct{}

func (alwaysClosed) Do(ctx context.Context, op func(ctx context.Context) error) error { return op(ctx) }

func (alwaysClosed) State() scalable.State { return scalable.Closed }

// breakerOnlyPayments is a wrong answer to exercise 10: a breaker in front of
// the gateway, and no outbox, so a payment the breaker stops is lost.
type breakerOnlyPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	timeout time.Duration
	breaker *scalable.Breaker
}

func (p *breakerOnlyPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	var charge gateway.Charge
	err := p.breaker.Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		var err error
		charge, err = p.gateway.Charge(ctx, req, key)
		return err
	})
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, $5, 'charged', $6) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	err = p.db.QueryRow(ctx, insertPayment, key, req.Reference, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	return payment, nil
}
