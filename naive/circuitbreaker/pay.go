// Package circuitbreaker takes payments through the payment gateway, trying each up
// to three times, each try with a timeout. While the gateway is down, every
// payment waits out three timeouts, sends three requests to a service that
// cannot answer, and is lost.
package circuitbreaker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Attempts is how many times Pay tries the gateway.
const Attempts = 3

// Payments takes payments through a gateway and records them in db.
type Payments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	timeout time.Duration
}

// MaxTimeout is the longest timeout NewPayments accepts for a try.
const MaxTimeout = time.Hour

// NewPayments returns Payments that charge through gw, giving each try
// timeout, and record in db; or, for no database, no gateway, or a timeout
// that is not positive or is over [MaxTimeout], an error wrapping
// [shop.ErrInvalidConfig].
func NewPayments(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) (*Payments, error) {
	switch {
	case db == nil:
		return nil, fmt.Errorf("payments: no database: %w", shop.ErrInvalidConfig)
	case gw == nil:
		return nil, fmt.Errorf("payments: no gateway client: %w", shop.ErrInvalidConfig)
	case timeout <= 0 || timeout > MaxTimeout:
		return nil, fmt.Errorf("payments: timeout %v: want more than 0 and at most %v: %w", timeout, MaxTimeout, shop.ErrInvalidConfig)
	}
	return &Payments{db: db, gateway: gw, timeout: timeout}, nil
}

// Pay charges req, once per key, the user's name for the payment, and records
// the payment. A key the user has used returns that payment, or
// [shop.ErrKeyReused] if it was for a different one; an empty key is refused
// with [shop.ErrNoIdempotencyKey].
func (p *Payments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if key == "" {
		return shop.Payment{}, fmt.Errorf("pay %.40q: %w", req.Reference, shop.ErrNoIdempotencyKey)
	}
	stored, err := p.stored(ctx, key, req)
	if !errors.Is(err, pgx.ErrNoRows) {
		return stored, err
	}
	var charge gateway.Charge
	for range Attempts {
		if charge, err = p.chargeOnce(ctx, key, req); err == nil {
			break
		}
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %d tries: %w", req.Reference, Attempts, err)
	}
	const insertPayment = `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, $5, 'charged', $6) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	err = p.db.QueryRow(ctx, insertPayment, key, req.Reference, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		// A caller with the same key recorded it first, after the same
		// charge (the gateway answers one key with one charge): answer theirs.
		return p.stored(ctx, key, req)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s, charged as %s: %w", req.Reference, charge.ID, err)
	}
	return payment, nil
}

// stored returns the payment recorded under the user's key, an error wrapping
// [shop.ErrKeyReused] if it was for another amount or currency, or
// [pgx.ErrNoRows] if there is none.
func (p *Payments) stored(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	const storedPayment = `
		SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE user_id = $1 AND idempotency_key = $2`
	var stored shop.Payment
	err := p.db.QueryRow(ctx, storedPayment, req.UserID, key).Scan(&stored.ID, &stored.UserID, &stored.AmountCents, &stored.Currency, &stored.Status, &stored.ChargeID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return shop.Payment{}, err
	case err != nil:
		return shop.Payment{}, fmt.Errorf("pay %.40q: read the payment of key %.40q: %w", req.Reference, key, err)
	case stored.AmountCents != req.AmountCents || stored.Currency != req.Currency:
		return shop.Payment{}, fmt.Errorf("pay %.40q with key %.40q: %w", req.Reference, key, shop.ErrKeyReused)
	}
	return stored, nil
}

func (p *Payments) chargeOnce(ctx context.Context, key string, req gateway.ChargeRequest) (gateway.Charge, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.gateway.Charge(ctx, req, key)
}
