package retries

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// RetryingPayments is the first fix people write for [Payments]: try three
// times, a fixed 100 ms apart, and remember each key's payment in memory so
// a double-click does not pay twice.
//
// It pays twice anyway. Two calls with one key, at once, both find nothing in
// memory (check-then-set races), and both charge. A try whose reply was lost
// after the gateway took the money is tried again without a key, and the
// gateway takes it again. It also retries what cannot pass (a 400), and all
// its clients retry in step.
type RetryingPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	paid    sync.Map // paidKey → shop.Payment
}

// paidKey is a user's idempotency key: two users' keys never meet.
type paidKey struct {
	userID int64
	key    string
}

// NewRetryingPayments returns RetryingPayments that charge through gw and
// record in db, or the error of [checkConfig].
func NewRetryingPayments(db *pgxpool.Pool, gw *gateway.Client) (*RetryingPayments, error) {
	if err := checkConfig("retrying payments", db, gw); err != nil {
		return nil, err
	}
	return &RetryingPayments{db: db, gateway: gw}, nil
}

// Pay charges req, trying three times, and records the payment; a key the
// user has used returns that key's payment, or [shop.ErrKeyReused] if it was
// for a different one. An empty key is refused with
// [shop.ErrNoIdempotencyKey].
func (p *RetryingPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if key == "" {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", shop.Quote(req.Reference), shop.ErrNoIdempotencyKey)
	}
	if paid, ok := p.paid.Load(paidKey{req.UserID, key}); ok { // check…
		payment := paid.(shop.Payment)
		if payment.AmountCents != req.AmountCents || payment.Currency != req.Currency {
			return shop.Payment{}, fmt.Errorf("pay %s with key %s: %w", shop.Quote(req.Reference), shop.Quote(key), shop.ErrKeyReused)
		}
		return payment, nil
	}
	var charge gateway.Charge
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if charge, err = p.gateway.Charge(ctx, req, ""); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	p.paid.Store(paidKey{req.UserID, key}, payment) // …then set
	return payment, nil
}
