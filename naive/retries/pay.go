// Package retries takes payments through the payment gateway: one request per
// payment. A timeout, a 503 or a dropped connection fails the payment, though
// the same request a moment later would have gone through.
package retries

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Payments takes payments through a gateway and records them in db.
type Payments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
}

// NewPayments returns Payments that charge through gw and record in db, or
// the error of [checkConfig].
func NewPayments(db *pgxpool.Pool, gw *gateway.Client) (*Payments, error) {
	if err := checkConfig("payments", db, gw); err != nil {
		return nil, err
	}
	return &Payments{db: db, gateway: gw}, nil
}

// checkConfig returns an error wrapping [shop.ErrInvalidConfig], naming the
// setting, for no database or no gateway client.
func checkConfig(what string, db *pgxpool.Pool, gw *gateway.Client) error {
	switch {
	case db == nil:
		return fmt.Errorf("%s: no database: %w", what, shop.ErrInvalidConfig)
	case gw == nil:
		return fmt.Errorf("%s: no gateway client: %w", what, shop.ErrInvalidConfig)
	}
	return nil
}

// Pay charges req and records the payment. It ignores key, the client's name
// for the payment: a client that tries again pays again.
func (p *Payments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	charge, err := p.gateway.Charge(ctx, req, "")
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, 'charged', $4) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	if err := p.db.QueryRow(ctx, insertPayment, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s, charged as %s: %w", req.Reference, charge.ID, err)
	}
	return payment, nil
}
