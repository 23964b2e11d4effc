package connections

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/connections"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/connections"
	scalable "works-vs-scales/scalable/connections"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Lesson 13's exercise, in exercises/connections: Pay holding no connection
// while the gateway works. Its check is here, with the proof that it fails on
// the starting point and on the wrong answer people write first, and passes on
// the answer; the trainee's run of it, TestExercise13, is in exercise_test.go,
// behind the exercise tag.

type newPaymentsFunc func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error)

// checkExercise13 says what is still wrong with an answer to lesson 13's
// exercise, or nil when it is done: a payment the gateway charges is
// recorded as charged; with the pool's 4 connections' worth of payments
// inside the gateway, a query on the same pool gets a connection at once;
// and a payment the gateway refuses is recorded failed, or not at all.
func checkExercise13(t *testing.T, newPayments newPaymentsFunc) error {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()

	payments, err := newPayments(db, instantGateway{})
	if err != nil {
		return fmt.Errorf("your NewPayments: %w", err)
	}
	payment, err := payments.Pay(ctx, 7, 1250)
	if err != nil {
		return fmt.Errorf("paying 1250 cents for user 7: %w", err)
	}
	if status, chargeID := paymentRow(t, db, payment.ID); status != shop.PaymentCharged || chargeID != payment.ChargeID || chargeID == "" {
		return fmt.Errorf("payment %d, charged as %q: its row says %s, charge %q; want charged, %q", payment.ID, payment.ChargeID, status, chargeID, payment.ChargeID)
	}

	pool := benchkit.CheckPool(t, db, slowPayPoolSize)
	held := newHeldGateway(t, slowPayPoolSize)
	payments, err = newPayments(pool, held)
	if err != nil {
		return fmt.Errorf("your NewPayments: %w", err)
	}
	seen, fastErr, payErrs := slowPaymentsAndAFastQuery(t, pool, payments, held)
	if fastErr != nil {
		return fmt.Errorf("with %d payments in the gateway, %d of the pool's %d connections were in use, and a query on the same pool got none within %v: %w",
			slowPayPoolSize, seen.acquiredWhileHeld, slowPayPoolSize, fastQueryDeadline, fastErr)
	}
	if err := errors.Join(payErrs...); err != nil {
		return fmt.Errorf("payments the gateway charged: %w", err)
	}
	if charged := benchkit.PaymentStatuses(t, db)[shop.PaymentCharged]; charged != 1+slowPayPoolSize {
		return fmt.Errorf("after %d more charges, %d payments say charged: want %d", slowPayPoolSize, charged, 1+slowPayPoolSize)
	}

	payments, err = newPayments(db, &refusingGateway{})
	if err != nil {
		return fmt.Errorf("your NewPayments: %w", err)
	}
	if _, err := payments.Pay(ctx, 8, 990); err == nil {
		return errors.New("a payment the gateway refused (402) returned no error")
	}
	if charged := benchkit.PaymentStatuses(t, db)[shop.PaymentCharged]; charged != 1+slowPayPoolSize {
		return fmt.Errorf("after %d charges and one refusal, %d payments say charged: want %d", 1+slowPayPoolSize, charged, 1+slowPayPoolSize)
	}
	const refused = `SELECT id, status FROM payments WHERE user_id = 8 AND amount_cents = 990`
	rows, err := db.Query(ctx, refused)
	if err != nil {
		return fmt.Errorf("read the refused payment: %w", err)
	}
	var refusedID int64
	var status string
	if _, err := pgx.ForEachRow(rows, []any{&refusedID, &status}, func() error {
		if status != shop.PaymentFailed {
			return fmt.Errorf("the gateway refused payment %d (402, a declined card), and its row says %s: want %s, or no row. "+
				"A refusal is the gateway's last word, and a payment left %s stays so for ever, read as one still in progress (lesson 13, \"The scales version\")",
				refusedID, status, shop.PaymentFailed, status)
		}
		return nil
	}); err != nil {
		return err
	}
	return nil
}

func TestExercise13CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise13(t, func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error) {
		return exercise.NewPayments(db, gw)
	})
	require.ErrorContains(t, err, "got none within")
}

func TestExercise13CheckFailsOnAConnectionHeldWithoutATransaction(t *testing.T) {
	err := checkExercise13(t, func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error) { return heldConnPayments{db, gw}, nil })
	require.ErrorContains(t, err, "got none within")
}

func TestExercise13CheckFailsOnChargedBeforeTheGatewayAnswers(t *testing.T) {
	err := checkExercise13(t, func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error) {
		return optimisticPayments{db, gw}, nil
	})
	require.ErrorContains(t, err, "payments say charged")
}

func TestExercise13CheckFailsOnAConnectionPerStatementThatForgetsARefusal(t *testing.T) {
	err := checkExercise13(t, func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error) { return statementPayments{db, gw}, nil })
	require.ErrorContains(t, err, "its row says pending: want failed, or no row")
	t.Log(err)
}

func TestExercise13CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise13(t, func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error) {
		return scalable.NewPayments(db, gw)
	}))
}

// heldConnPayments is the first fix people write: no transaction around the
// charge any more, but one connection acquired for the whole payment, so
// that its three statements run on it. The connection is held while the
// gateway works, as before.
type heldConnPayments struct {
	db      *pgxpool.Pool
	gateway naive.Charger
}

func (p heldConnPayments) Pay(ctx context.Context, userID, amountCents int64) (shop.Payment, error) {
	conn, err := p.db.Acquire(ctx)
	if err != nil {
		return shop.Payment{}, err
	}
	defer conn.Release()
	payment := shop.Payment{UserID: userID, AmountCents: amountCents, Currency: "EUR"}
	const insertPayment = `INSERT INTO payments (user_id, amount_cents, currency) VALUES ($1, $2, $3) RETURNING id`
	if err := conn.QueryRow(ctx, insertPayment, userID, amountCents, "EUR").Scan(&payment.ID); err != nil {
		return shop.Payment{}, err
	}
	reference := fmt.Sprintf("payment-%d", payment.ID)
	charge, err := p.gateway.Charge(ctx, gateway.ChargeRequest{UserID: userID, AmountCents: amountCents, Currency: "EUR", Reference: reference}, reference)
	if err != nil {
		return shop.Payment{}, err
	}
	const markCharged = `UPDATE payments SET status = 'charged', charge_id = $2 WHERE id = $1`
	if _, err := conn.Exec(ctx, markCharged, payment.ID, charge.ID); err != nil {
		return shop.Payment{}, err
	}
	payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
	return payment, nil
}

// optimisticPayments is the second: one statement records the payment as
// charged, then the gateway is called outside any transaction. It holds no
// connection in the gateway, and a refused charge stays recorded as charged.
type optimisticPayments struct {
	db      *pgxpool.Pool
	gateway naive.Charger
}

func (p optimisticPayments) Pay(ctx context.Context, userID, amountCents int64) (shop.Payment, error) {
	payment := shop.Payment{UserID: userID, AmountCents: amountCents, Currency: "EUR", Status: shop.PaymentCharged}
	const insertPayment = `INSERT INTO payments (user_id, amount_cents, currency, status) VALUES ($1, $2, $3, 'charged') RETURNING id`
	if err := p.db.QueryRow(ctx, insertPayment, userID, amountCents, "EUR").Scan(&payment.ID); err != nil {
		return shop.Payment{}, err
	}
	reference := fmt.Sprintf("payment-%d", payment.ID)
	charge, err := p.gateway.Charge(ctx, gateway.ChargeRequest{UserID: userID, AmountCents: amountCents, Currency: "EUR", Reference: reference}, reference)
	if err != nil {
		return shop.Payment{}, err
	}
	const setChargeID = `UPDATE payments SET charge_id = $2 WHERE id = $1`
	if _, err := p.db.Exec(ctx, setChargeID, payment.ID, charge.ID); err != nil {
		return shop.Payment{}, err
	}
	payment.ChargeID = charge.ID
	return payment, nil
}

// statementPayments is the third: each statement on a connection of its own,
// none held while the gateway works, the right status once it charges; but
// a charge the gateway refuses returns its error and leaves the row as it
// was, pending, with nothing that will ever settle it.
type statementPayments struct {
	db      *pgxpool.Pool
	gateway naive.Charger
}

func (p statementPayments) Pay(ctx context.Context, userID, amountCents int64) (shop.Payment, error) {
	payment := shop.Payment{UserID: userID, AmountCents: amountCents, Currency: "EUR", Status: shop.PaymentPending}
	const insertPayment = `INSERT INTO payments (user_id, amount_cents, currency) VALUES ($1, $2, $3) RETURNING id`
	if err := p.db.QueryRow(ctx, insertPayment, userID, amountCents, "EUR").Scan(&payment.ID); err != nil {
		return shop.Payment{}, err
	}
	reference := fmt.Sprintf("payment-%d", payment.ID)
	charge, err := p.gateway.Charge(ctx, gateway.ChargeRequest{UserID: userID, AmountCents: amountCents, Currency: "EUR", Reference: reference}, reference)
	if err != nil {
		return shop.Payment{}, err
	}
	const markCharged = `UPDATE payments SET status = 'charged', charge_id = $2 WHERE id = $1`
	if _, err := p.db.Exec(ctx, markCharged, payment.ID, charge.ID); err != nil {
		return shop.Payment{}, err
	}
	payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
	return payment, nil
}
