// Package connections is lesson 13's exercise: yours to change.
//
// Pay below records a payment, charges it through the gateway and marks it
// charged, all in one transaction: correct, and while the gateway works (a
// second, in a bad minute) the transaction holds one of the pool's
// connections. A few slow payments empty the pool, and every other request
// of the service waits for them. Make Pay hold no connection while the
// gateway works, and keep it correct: a payment the gateway charged is
// recorded as charged, one it refused is not, then check:
//
//	go test -race -tags exercise -run '^TestExercise13$' ./bench/connections
//
// The check gives Payments a pool of 4 connections and a gateway that
// holds every charge until the check lets it go; with 4 payments in the
// gateway, a query on the same pool must get a connection at once. It also
// checks what each payment's row says once the gateway answers, and after a
// refusal: failed, or no row, never pending for ever. One answer is in
// works-vs-scales/scalable/connections.
package connections

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Charger takes money: the payment gateway, a service outside the database
// whose calls take tens to hundreds of milliseconds. A *gateway.Client is
// one; it charges once per idempotency key.
type Charger interface {
	Charge(ctx context.Context, req gateway.ChargeRequest, idempotencyKey string) (gateway.Charge, error)
}

// Currency is the currency of every payment Payments takes.
const Currency = "EUR"

// Payments takes payments through a Charger and records them in a database.
type Payments struct {
	db      *pgxpool.Pool
	gateway Charger
}

// NewPayments returns Payments that charge through gw and record in db; no
// database or no gateway is an error wrapping [shop.ErrInvalidConfig].
func NewPayments(db *pgxpool.Pool, gw Charger) (*Payments, error) {
	switch {
	case db == nil:
		return nil, fmt.Errorf("payments: no database: %w", shop.ErrInvalidConfig)
	case gw == nil:
		return nil, fmt.Errorf("payments: no gateway: %w", shop.ErrInvalidConfig)
	}
	return &Payments{db: db, gateway: gw}, nil
}

// Pay charges a user amountCents and returns the payment, charged. The
// payment's row, the charge and the row's update are one transaction: when
// the gateway fails, the row is rolled back and no payment is recorded.
//
// The transaction holds a connection of the pool from its first statement to
// its commit, while the gateway works.
func (p *Payments) Pay(ctx context.Context, userID, amountCents int64) (shop.Payment, error) {
	if amountCents <= 0 {
		return shop.Payment{}, fmt.Errorf("pay %d cents: %w", amountCents, shop.ErrInvalidQuantity)
	}
	tx, err := p.db.Begin(ctx)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %d cents for user %d: %w", amountCents, userID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, does nothing

	const insertPayment = `INSERT INTO payments (user_id, amount_cents, currency) VALUES ($1, $2, $3) RETURNING id`
	payment := shop.Payment{UserID: userID, AmountCents: amountCents, Currency: Currency, Status: shop.PaymentPending}
	err = tx.QueryRow(ctx, insertPayment, userID, amountCents, Currency).Scan(&payment.ID)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return shop.Payment{}, fmt.Errorf("pay for user %d: %w", userID, shop.ErrUserNotFound)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %d cents for user %d: record the payment: %w", amountCents, userID, err)
	}

	reference := "payment-" + strconv.FormatInt(payment.ID, 10)
	req := gateway.ChargeRequest{UserID: userID, AmountCents: amountCents, Currency: Currency, Reference: reference}
	charge, err := p.gateway.Charge(ctx, req, reference)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", reference, err)
	}

	const markCharged = `UPDATE payments SET status = 'charged', charge_id = $2 WHERE id = $1`
	if _, err := tx.Exec(ctx, markCharged, payment.ID, charge.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s, charged as %s: %w", reference, charge.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s, charged as %s: %w", reference, charge.ID, err)
	}
	payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
	return payment, nil
}
