// Package retry takes payments through the payment gateway and tries again
// when a try fails for a reason that may pass: with exponential backoff and
// jitter, within a deadline, and never charging one payment twice, because
// every try carries the payment's idempotency key, which PostgreSQL keeps
// unique.
package retry

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// ErrInProgress is [shop.ErrInProgress]: a key whose payment another call is
// making.
var ErrInProgress = shop.ErrInProgress

// ErrKeyReused is [shop.ErrKeyReused]: a key its user already used for a
// different payment.
var ErrKeyReused = shop.ErrKeyReused

// Payments takes payments through a gateway and records them in db.
type Payments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	policy  Policy
}

// NewPayments returns Payments that charge through gw and record in db,
// retrying as [DefaultPolicy] says.
func NewPayments(db *pgxpool.Pool, gw *gateway.Client) *Payments {
	return &Payments{db: db, gateway: gw, policy: DefaultPolicy}
}

// WithPolicy returns a copy of p that retries as policy says, or the error of
// [Policy.Validate].
func (p *Payments) WithPolicy(policy Policy) (*Payments, error) {
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	copied := *p
	copied.policy = policy
	return &copied, nil
}

// Pay charges req once per key, the user's name for the payment, and records
// it. A second call with the user's key returns the first's payment, or
// [ErrInProgress] while the first is still paying, or [ErrKeyReused] if it
// asks for a different payment; a call after a failed one tries again. An
// empty key is refused with [shop.ErrNoIdempotencyKey]. Transient failures
// are retried as the policy says.
func (p *Payments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if key == "" {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", quoted(req.Reference), shop.ErrNoIdempotencyKey)
	}
	payment, claimed, err := p.claim(ctx, key, req)
	if err != nil || !claimed {
		return payment, err
	}
	var charge gateway.Charge
	chargeErr := Do(ctx, p.policy, func(ctx context.Context) error {
		var err error
		charge, err = p.gateway.Charge(ctx, req, key) // the same key on every try
		return err
	})
	// The outcome is recorded even if the caller has given up meanwhile:
	// otherwise the key would stay pending.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.policy.MaxElapsed)
	defer cancel()
	if chargeErr != nil {
		payment.Status = shop.PaymentFailed
		return payment, errors.Join(fmt.Errorf("pay %s: %w", quoted(req.Reference), chargeErr), p.record(recordCtx, payment))
	}
	payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
	if err := p.record(recordCtx, payment); err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: charged as %s: %w", quoted(req.Reference), charge.ID, err)
	}
	return payment, nil
}

// claim makes the payment's row for key, pending, or takes back a failed one:
// then claimed is true and the caller charges. Otherwise the row exists, and
// claim returns it: charged, or [ErrInProgress], or [ErrKeyReused].
//
// One statement decides, against the unique key on (user_id,
// idempotency_key): of two calls with one key, at once, exactly one inserts.
// A check-then-insert (or a
// check-then-set in a cache) lets both see no row, and both charge.
func (p *Payments) claim(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, bool, error) {
	// payments_user_id_idempotency_key_key decides; storedPayment reads
	// through it too.
	const claimPayment = `
		INSERT INTO payments (idempotency_key, user_id, amount_cents, currency, status)
		VALUES ($1, $2, $3, $4, 'pending')
		ON CONFLICT (user_id, idempotency_key) DO UPDATE SET status = 'pending'
			WHERE payments.status = 'failed'
			AND (payments.user_id, payments.amount_cents, payments.currency) = (EXCLUDED.user_id, EXCLUDED.amount_cents, EXCLUDED.currency)
		RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentPending}
	err := p.db.QueryRow(ctx, claimPayment, key, req.UserID, req.AmountCents, req.Currency).Scan(&payment.ID)
	if err == nil {
		return payment, true, nil
	}
	if isUnknownUser(err) {
		return shop.Payment{}, false, fmt.Errorf("pay %s for user %d: %w", quoted(req.Reference), req.UserID, shop.ErrUserNotFound)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return shop.Payment{}, false, fmt.Errorf("pay %s: claim key %s: %w", quoted(req.Reference), quoted(key), err)
	}
	const storedPayment = `
		SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE user_id = $1 AND idempotency_key = $2`
	var stored shop.Payment
	err = p.db.QueryRow(ctx, storedPayment, req.UserID, key).Scan(&stored.ID, &stored.UserID, &stored.AmountCents, &stored.Currency, &stored.Status, &stored.ChargeID)
	switch {
	case err != nil:
		return shop.Payment{}, false, fmt.Errorf("pay %s: read the payment of key %s: %w", quoted(req.Reference), quoted(key), err)
	case stored.AmountCents != req.AmountCents || stored.Currency != req.Currency:
		return shop.Payment{}, false, fmt.Errorf("pay %s with key %s: %w", quoted(req.Reference), quoted(key), ErrKeyReused)
	case stored.Status != shop.PaymentCharged:
		return stored, false, fmt.Errorf("pay %s with key %s: %w", quoted(req.Reference), quoted(key), ErrInProgress)
	}
	return stored, false, nil
}

// record writes the payment's outcome, retrying if the connection fails: the
// update can run twice and mean it once.
func (p *Payments) record(ctx context.Context, payment shop.Payment) error {
	const recordPayment = `UPDATE payments SET status = $2, charge_id = nullif($3, '') WHERE id = $1`
	err := Do(ctx, p.policy, func(ctx context.Context) error {
		_, err := p.db.Exec(ctx, recordPayment, payment.ID, payment.Status, payment.ChargeID)
		return err
	})
	if err != nil {
		return fmt.Errorf("record payment %d as %s: %w", payment.ID, payment.Status, err)
	}
	return nil
}

// quoted returns s quoted for an error message, cut to its first 40 bytes:
// an error never echoes a huge input back.
func quoted(s string) string {
	const most = 40
	if len(s) > most {
		return strconv.Quote(s[:most]) + "…"
	}
	return strconv.Quote(s)
}

// isUnknownUser reports whether err is the payment's foreign key to users
// pointing at no one (SQLSTATE 23503).
func isUnknownUser(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
