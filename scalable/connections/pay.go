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

// Pay charges a user amountCents and returns the payment, charged. It
// records the payment as pending, charges it with no connection held, then
// records the outcome: three short steps, each holding a connection of the
// pool for one statement. A charge the gateway refused leaves the payment
// failed; one that failed otherwise (a timeout, an outage) may have taken the
// money, and leaves it unknown.
//
// Between the steps the payment is pending, and its row says so: a process
// that dies while the gateway works leaves a pending payment whose
// reference is its idempotency key at the gateway, to settle by that key
// (lesson 9), not a charge the database has no trace of.
func (p *Payments) Pay(ctx context.Context, userID, amountCents int64) (shop.Payment, error) {
	if amountCents <= 0 {
		return shop.Payment{}, fmt.Errorf("pay %d cents: %w", amountCents, shop.ErrInvalidQuantity)
	}
	// The row commits before the charge: its id names the charge at the gateway.
	const insertPayment = `INSERT INTO payments (user_id, amount_cents, currency) VALUES ($1, $2, $3) RETURNING id`
	payment := shop.Payment{UserID: userID, AmountCents: amountCents, Currency: Currency, Status: shop.PaymentPending}
	err := p.db.QueryRow(ctx, insertPayment, userID, amountCents, Currency).Scan(&payment.ID)
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
		// Refused, it made no charge; otherwise it may have: unknown, to
		// settle by the key.
		status := shop.PaymentUnknown
		if gateway.IsClientError(err) {
			status = shop.PaymentFailed
		}
		const markFailed = `UPDATE payments SET status = $2 WHERE id = $1`
		if _, markErr := p.db.Exec(context.WithoutCancel(ctx), markFailed, payment.ID, status); markErr != nil {
			return shop.Payment{}, fmt.Errorf("pay %s: %w (and marking it failed: %w)", reference, err, markErr)
		}
		return shop.Payment{}, fmt.Errorf("pay %s: %w", reference, err)
	}

	const markCharged = `UPDATE payments SET status = 'charged', charge_id = $2 WHERE id = $1`
	if _, err := p.db.Exec(context.WithoutCancel(ctx), markCharged, payment.ID, charge.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s, charged as %s: %w", reference, charge.ID, err)
	}
	payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
	return payment, nil
}
