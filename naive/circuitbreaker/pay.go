// Package circuitbreaker takes payments through the payment gateway, trying
// each up to three times, each try with a timeout. While the gateway is down,
// every payment waits out three timeouts, sends three requests to a service
// that cannot answer, and is lost.
package circuitbreaker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/ledger"
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
		return shop.Payment{}, fmt.Errorf("pay %s: %w", shop.Quote(req.Reference), shop.ErrNoIdempotencyKey)
	}
	paid, err := ledger.Find(ctx, p.db, req.UserID, key, req.AmountCents, req.Currency)
	if !errors.Is(err, pgx.ErrNoRows) {
		return paid, err // paid before, or the key paid for something else
	}
	var charge gateway.Charge
	for range Attempts {
		if charge, err = p.chargeOnce(ctx, key, req); err == nil {
			break
		}
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %d tries: %w", shop.Quote(req.Reference), Attempts, err)
	}
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, ChargeID: charge.ID}
	return ledger.RecordCharged(ctx, p.db, key, req.Reference, payment)
}

func (p *Payments) chargeOnce(ctx context.Context, key string, req gateway.ChargeRequest) (gateway.Charge, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.gateway.Charge(ctx, req, key)
}
