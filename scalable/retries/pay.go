// Package retries takes payments through the payment gateway and tries again
// when a try fails for a reason that may pass: with exponential backoff and
// jitter, within a deadline, and never charging one payment twice, because
// every try carries the payment's idempotency key, which PostgreSQL keeps
// unique.
package retries

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

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
// retrying as [DefaultPolicy] says; or, for no database or no gateway client,
// an error wrapping [shop.ErrInvalidConfig], as the naive version does.
func NewPayments(db *pgxpool.Pool, gw *gateway.Client) (*Payments, error) {
	switch {
	case db == nil:
		return nil, fmt.Errorf("payments: no database: %w", shop.ErrInvalidConfig)
	case gw == nil:
		return nil, fmt.Errorf("payments: no gateway client: %w", shop.ErrInvalidConfig)
	}
	return &Payments{db: db, gateway: gw, policy: DefaultPolicy}, nil
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
//
// When the retries run out on a failure that leaves the outcome unknown (a
// timeout, a 5xx: the gateway may have charged before failing), Pay asks the
// gateway what happened to the key and records what it says: charged, or
// failed if it made no charge. If the gateway cannot say either, the payment
// is recorded unknown, never failed, and the next call with the key settles
// it.
func (p *Payments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if key == "" {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", shop.Quote(req.Reference), shop.ErrNoIdempotencyKey)
	}
	owner := rand.Text()
	payment, claimed, err := p.claim(ctx, key, owner, req)
	if err != nil || !claimed {
		return payment, err
	}
	var charge gateway.Charge
	chargeErr := Do(ctx, p.policy, func(ctx context.Context) error {
		var err error
		charge, err = p.gateway.Charge(ctx, req, key) // the same key on every try
		return err
	})
	// The outcome is settled and recorded even if the caller has given up
	// meanwhile: otherwise the key would stay pending until its lease ends.
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.policy.MaxElapsed)
	defer cancel()
	switch {
	case chargeErr == nil:
		payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
	case gateway.IsClientError(chargeErr):
		payment.Status = shop.PaymentFailed // refused: no money taken
	default:
		payment.Status, payment.ChargeID, err = p.reconcile(settleCtx, key, req)
		if payment.Status == shop.PaymentCharged {
			chargeErr = nil // the gateway charged; only its replies were lost
		} else {
			chargeErr = errors.Join(chargeErr, err)
		}
	}
	if err := p.record(settleCtx, owner, payment); err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %s as %q: %w", shop.Quote(req.Reference), payment.Status, payment.ChargeID, errors.Join(chargeErr, err))
	}
	if chargeErr != nil {
		return payment, fmt.Errorf("pay %s: %w", shop.Quote(req.Reference), chargeErr)
	}
	return payment, nil
}

// reconcile asks the gateway what happened to the user's key, retrying as
// the policy says: status is charged with the charge's id, failed if the
// gateway made no charge, or unknown if it could not say.
func (p *Payments) reconcile(ctx context.Context, key string, req gateway.ChargeRequest) (status, chargeID string, err error) {
	var charge gateway.Charge
	err = Do(ctx, p.policy, func(ctx context.Context) error {
		var err error
		charge, err = p.gateway.ChargeByKey(ctx, req.UserID, key)
		return err
	})
	switch {
	case err == nil:
		return shop.PaymentCharged, charge.ID, nil
	case errors.Is(err, gateway.ErrNoCharge):
		return shop.PaymentFailed, "", nil
	}
	return shop.PaymentUnknown, "", fmt.Errorf("reconcile key %s: %w", shop.Quote(key), err)
}

// lease is how long a claim is its owner's: long enough for Pay to charge,
// reconcile and record, as the policy bounds each. After it, the owner is
// taken for dead and another call may take the payment over.
func (p *Payments) lease() time.Duration {
	return 3 * (p.policy.MaxElapsed + p.policy.AttemptTimeout)
}

// claim makes the payment's row for the user's key, pending and leased to
// owner; or takes over a row that failed, is unknown, or is pending past its
// lease: then claimed is true and the caller charges. Charging again is safe,
// as every try carries the key: if the gateway charged before, it answers
// with that charge. Otherwise the row exists, and claim returns it: charged,
// or [ErrInProgress] while its lease runs, or [ErrKeyReused].
//
// One statement decides, against the unique key on (user_id,
// idempotency_key): of two calls with one key, at once, exactly one inserts.
// A check-then-insert (or a check-then-set in a cache) lets both see no row,
// and both charge.
func (p *Payments) claim(ctx context.Context, key, owner string, req gateway.ChargeRequest) (shop.Payment, bool, error) {
	// payments_user_id_idempotency_key_key decides; storedPayment reads
	// through it too.
	const claimPayment = `
		INSERT INTO payments (idempotency_key, user_id, amount_cents, currency, status, lease_owner, lease_expires_at)
		VALUES ($1, $2, $3, $4, 'pending', $5, now() + $6 * interval '1 microsecond')
		ON CONFLICT (user_id, idempotency_key) DO UPDATE
			SET status = 'pending', lease_owner = EXCLUDED.lease_owner, lease_expires_at = EXCLUDED.lease_expires_at
			WHERE (payments.status IN ('failed', 'unknown') OR (payments.status = 'pending' AND payments.lease_expires_at < now()))
			AND (payments.amount_cents, payments.currency) = (EXCLUDED.amount_cents, EXCLUDED.currency)
		RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentPending}
	err := p.db.QueryRow(ctx, claimPayment, key, req.UserID, req.AmountCents, req.Currency, owner, p.lease().Microseconds()).Scan(&payment.ID)
	if err == nil {
		return payment, true, nil
	}
	if isUnknownUser(err) {
		return shop.Payment{}, false, fmt.Errorf("pay %s for user %d: %w", shop.Quote(req.Reference), req.UserID, shop.ErrUserNotFound)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return shop.Payment{}, false, fmt.Errorf("pay %s: claim key %s: %w", shop.Quote(req.Reference), shop.Quote(key), err)
	}
	const storedPayment = `
		SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE user_id = $1 AND idempotency_key = $2`
	var stored shop.Payment
	err = p.db.QueryRow(ctx, storedPayment, req.UserID, key).Scan(&stored.ID, &stored.UserID, &stored.AmountCents, &stored.Currency, &stored.Status, &stored.ChargeID)
	switch {
	case err != nil:
		return shop.Payment{}, false, fmt.Errorf("pay %s: read the payment of key %s: %w", shop.Quote(req.Reference), shop.Quote(key), err)
	case stored.AmountCents != req.AmountCents || stored.Currency != req.Currency:
		return shop.Payment{}, false, fmt.Errorf("pay %s with key %s: %w", shop.Quote(req.Reference), shop.Quote(key), ErrKeyReused)
	case stored.Status != shop.PaymentCharged:
		return stored, false, fmt.Errorf("pay %s with key %s: %w", shop.Quote(req.Reference), shop.Quote(key), ErrInProgress)
	}
	return stored, false, nil
}

// record writes the payment's outcome if owner still holds its claim,
// retrying if the connection fails: the update can run twice and mean it
// once. If another call has taken the claim over, it records instead, and
// record returns [ErrInProgress].
func (p *Payments) record(ctx context.Context, owner string, payment shop.Payment) error {
	const recordPayment = `
		UPDATE payments SET status = $2, charge_id = nullif($3, ''), lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $4`
	var recorded bool
	err := Do(ctx, p.policy, func(ctx context.Context) error {
		tag, err := p.db.Exec(ctx, recordPayment, payment.ID, payment.Status, payment.ChargeID, owner)
		recorded = tag.RowsAffected() == 1
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("record payment %d as %s: %w", payment.ID, payment.Status, err)
	case !recorded:
		return fmt.Errorf("record payment %d as %s: its lease was taken over: %w", payment.ID, payment.Status, ErrInProgress)
	}
	return nil
}

// isUnknownUser reports whether err is the payment's foreign key to users
// pointing at no one (SQLSTATE 23503).
func isUnknownUser(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
