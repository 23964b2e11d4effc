package retries

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 9's exercise, in exercises/retries. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise09, is in exercise_test.go, behind the exercise tag.

type newPayerFunc func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer

// checkExercise09 says what is still wrong with an answer to lesson 9's
// exercise, or nil when it is done: fifty concurrent calls with one key make
// one charge and one payment row, and each caller gets that payment or an
// error saying it is in progress; a payment whose first reply was lost is
// charged once. Each part runs on a copy of the shop of its own.
func checkExercise09(t *testing.T, newPayments newPayerFunc) error {
	const callers = 50
	gw := benchkit.StartGateway(t)
	gw.SetFaults(gatewaytest.Faults{Latency: 100 * time.Millisecond})
	db := pgtest.ShopClone(t, shop.Small)
	var lastBefore int64
	if err := db.QueryRow(context.Background(), "SELECT coalesce(max(id), 0) FROM payments").Scan(&lastBefore); err != nil {
		return fmt.Errorf("the payments before: %w", err)
	}
	payments := newPayments(db, gw.Client())
	results, errs, _, wait := benchkit.CallTogether(callers, func() (shop.Payment, error) {
		return payments.Pay(context.Background(), "double-click", benchkit.PaymentFor(1))
	})
	wait()
	charges := gw.Charges()
	if len(charges) != 1 {
		return fmt.Errorf("%d charges for %d concurrent calls with one key: make it 1", len(charges), callers)
	}
	const paymentsAfter = `SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE id > $1 ORDER BY id`
	rows, err := db.Query(context.Background(), paymentsAfter, lastBefore)
	if err != nil {
		return fmt.Errorf("the payments recorded: %w", err)
	}
	recorded, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Payment, error) {
		var p shop.Payment
		err := row.Scan(&p.ID, &p.UserID, &p.AmountCents, &p.Currency, &p.Status, &p.ChargeID)
		return p, err
	})
	if err != nil {
		return fmt.Errorf("the payments recorded: %w", err)
	}
	if len(recorded) != 1 {
		return fmt.Errorf("%d payment rows for %d concurrent calls with one key, and 1 charge: the gateway charged once because it got the key, "+
			"but your table says %d payments; one key, one row: let the unique key on idempotency_key decide which call pays (INSERT … ON CONFLICT), not a check before it",
			len(recorded), callers, len(recorded))
	}
	paid := 0
	for i := range results {
		var pgErr *pgconn.PgError
		switch {
		case errors.As(errs[i], &pgErr) && pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("caller %d of %d got the database's error %q: a caller whose key is being paid gets the first call's payment, or an error saying it is in progress",
				i, callers, pgErr.Message)
		case errs[i] != nil:
			continue
		case results[i].ID != recorded[0].ID || results[i].ChargeID != charges[0].ID:
			return fmt.Errorf("caller %d of %d got payment %d charged as %q, but the table holds payment %d and the gateway made %q: one key, one payment",
				i, callers, results[i].ID, results[i].ChargeID, recorded[0].ID, charges[0].ID)
		default:
			paid++
		}
	}
	if paid == 0 {
		return fmt.Errorf("none of %d concurrent calls with one key got its payment (the first error: %v); the call that pays returns it", callers, errs[0])
	}
	// How many got which depends on the scheduler: not a figure to pin.
	t.Logf("%d concurrent calls with one key: 1 charge, 1 payment row; every caller got that payment, or an error (in progress)", callers)

	gw = benchkit.StartGateway(t)
	gw.FailNext(gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true})
	payments = newPayments(pgtest.ShopClone(t, shop.Small), gw.Client())
	payment, err := payments.Pay(context.Background(), "lost-reply", benchkit.PaymentFor(2))
	if err != nil {
		return fmt.Errorf("a payment whose first reply was lost: %w", err)
	}
	if charges := len(gw.Charges()); charges != 1 {
		return fmt.Errorf("%d charges for a payment whose first reply was lost, and was retried: make it 1", charges)
	}
	if payment.ChargeID != gw.Charges()[0].ID {
		return fmt.Errorf("the payment records charge %q, the gateway made %q", payment.ChargeID, gw.Charges()[0].ID)
	}
	t.Logf("a payment whose first reply was lost: %d requests, 1 charge", gw.Requests())
	return nil
}

func TestExercise09CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer { return newRetryingPayments(t, db, gw) })
	require.ErrorContains(t, err, "50 charges for 50 concurrent calls")
	t.Log(err)
}

func TestExercise09CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		pay  newPayerFunc
		want string
	}{
		{"key merely forwarded to the gateway", func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return &keyForwardingPayments{db: db, gateway: gw}
		},
			"50 payment rows for 50 concurrent calls with one key, and 1 charge"},
		{"check, then insert", func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return &checkThenInsertPayments{db: db, gateway: gw}
		},
			"got the database's error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise09(t, tc.pay)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise09CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		return newFastRetryPayments(t, db, gw)
	}))
}

// keyForwardingPayments is a wrong answer to exercise 9: the starting code
// with the key passed on to the gateway. The gateway charges once per key,
// but every concurrent call records a payment of its own.
type keyForwardingPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	paid    sync.Map // key → shop.Payment
}

func (p *keyForwardingPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if paid, ok := p.paid.Load(key); ok {
		return paid.(shop.Payment), nil
	}
	var charge gateway.Charge
	var err error
	for range 3 {
		if charge, err = p.gateway.Charge(ctx, req, key); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, 'charged', $4) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	if err := p.db.QueryRow(ctx, insertPayment, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	p.paid.Store(key, payment)
	return payment, nil
}

// checkThenInsertPayments is a wrong answer to exercise 9: it looks for the
// key's payment, and when there is none, charges (with the key) and inserts.
// Concurrent calls all find none; the unique key keeps one row, and the
// others get the database's duplicate key error.
type checkThenInsertPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
}

func (p *checkThenInsertPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	const paymentOfKey = `SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE idempotency_key = $1`
	var payment shop.Payment
	err := p.db.QueryRow(ctx, paymentOfKey, key).Scan(&payment.ID, &payment.UserID, &payment.AmountCents, &payment.Currency, &payment.Status, &payment.ChargeID)
	if err == nil {
		return payment, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	var charge gateway.Charge
	for range 3 {
		if charge, err = p.gateway.Charge(ctx, req, key); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (idempotency_key, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, 'charged', $5) RETURNING id`
	payment = shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	if err := p.db.QueryRow(ctx, insertPayment, key, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	return payment, nil
}
