// Package circuitbreaker takes payments through the payment gateway behind a
// circuit breaker. While the gateway is down, the breaker opens after a few
// failures and payments stop waiting on it: each is queued in an outbox table,
// in the same transaction as its row, and a [Relay] charges it when the gateway
// is back. Nothing is lost, and nothing hammers a service that is down.
package circuitbreaker

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

// recordTimeout bounds writing a payment's outcome, which goes on after its
// caller has left.
const recordTimeout = 5 * time.Second

// Attempts is how many times Pay tries the gateway, as the naive version
// does: the breaker stops the tries once it opens.
const Attempts = 3

// Payments takes payments through a gateway, behind a breaker, and records
// them in db.
type Payments struct {
	db       *pgxpool.Pool
	gateway  *gateway.Client
	timeout  time.Duration
	breaker  Guard
	noOutbox bool
}

// MaxTimeout is the longest timeout NewPayments and NewRelay accept for a
// call, as the naive version does; it also keeps a pending payment's lease
// finite.
const MaxTimeout = time.Hour

// NewPayments returns Payments that charge through gw behind breaker, giving
// each call timeout, and record in db; or the error of [checkConfig].
func NewPayments(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration, breaker Guard) (*Payments, error) {
	if err := checkConfig("payments", db, gw, timeout, breaker); err != nil {
		return nil, err
	}
	return &Payments{db: db, gateway: gw, timeout: timeout, breaker: breaker}, nil
}

// checkConfig returns an error wrapping [shop.ErrInvalidConfig], naming the
// setting, for no database, no gateway, no breaker, or a timeout that is not
// positive or is over [MaxTimeout]: the settings the naive version refuses,
// and the breaker.
func checkConfig(what string, db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration, breaker Guard) error {
	switch {
	case db == nil:
		return fmt.Errorf("%s: no database: %w", what, shop.ErrInvalidConfig)
	case gw == nil:
		return fmt.Errorf("%s: no gateway client: %w", what, shop.ErrInvalidConfig)
	case timeout <= 0 || timeout > MaxTimeout:
		return fmt.Errorf("%s: timeout %v: want more than 0 and at most %v: %w", what, timeout, MaxTimeout, shop.ErrInvalidConfig)
	case breaker == nil || breaker == Guard((*Breaker)(nil)) || breaker == Guard((*Gobreaker)(nil)):
		return fmt.Errorf("%s: no breaker: %w", what, shop.ErrInvalidConfig)
	}
	return nil
}

// WithoutOutbox returns a copy of p that fails a payment it could not charge
// instead of queueing it: the breaker alone, as lesson 10 measures it to show
// what the outbox saves.
func (p *Payments) WithoutOutbox() *Payments {
	copied := *p
	copied.noOutbox = true
	return &copied
}

// Pay charges req, once per key, the user's name for the payment, and records
// the payment. It tries up to [Attempts] times while the gateway seems down
// and the breaker lets the call out. If the gateway is down, or the breaker
// open, it queues the payment for a [Relay] and returns it with status queued
// and no error: the payment is taken, to be charged. A key the user has used returns that
// payment, or [shop.ErrKeyReused] if it was for a different one (another
// amount, currency or reference); an empty key
// is refused with [shop.ErrNoIdempotencyKey]. A pending payment is leased to
// the call that made it: another call gets [shop.ErrInProgress] until the
// lease ends, then takes the payment over and charges it again with its key,
// which the gateway answers with the first charge, if there was one. A
// payment the gateway declines is recorded failed and returned with an
// error wrapping [shop.ErrDeclined]; its key answers failed from then on.
func (p *Payments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if key == "" {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", shop.Quote(req.Reference), shop.ErrNoIdempotencyKey)
	}
	owner := rand.Text()
	payment, created, err := p.create(ctx, key, owner, req)
	if err != nil || !created {
		return payment, err
	}
	var charge gateway.Charge
	for range Attempts { // while the gateway seems down and the breaker lets the call out
		err = p.breaker.Do(ctx, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			c, err := p.gateway.Charge(ctx, req, key)
			charge = c
			return err
		})
		if !IsOutage(err) || ctx.Err() != nil {
			break
		}
	}
	// The outcome is written even if the caller has left meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	switch {
	case err == nil:
		payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
		return payment, p.record(ctx, owner, payment)
	case p.noOutbox && (errors.Is(err, ErrOpen) || IsOutage(err) || errors.Is(err, context.Canceled)):
		payment.Status = shop.PaymentFailed
		return payment, errors.Join(fmt.Errorf("pay %s: %w", shop.Quote(req.Reference), err), p.record(ctx, owner, payment))
	case errors.Is(err, ErrOpen) || IsOutage(err) || errors.Is(err, context.Canceled):
		// Not charged, or not known to be: the relay will find out, with the key.
		payment.Status = shop.PaymentQueued
		return payment, p.queue(ctx, owner, payment)
	case gateway.IsClientError(err):
		// Declined: nothing charged, and sending it again would not change that.
		payment.Status = shop.PaymentFailed
		return payment, errors.Join(fmt.Errorf("pay %s: %w: %w", shop.Quote(req.Reference), shop.ErrDeclined, err), p.record(ctx, owner, payment))
	default:
		payment.Status = shop.PaymentFailed
		return payment, errors.Join(fmt.Errorf("pay %s: %w", shop.Quote(req.Reference), err), p.record(ctx, owner, payment))
	}
}

// lease is how long a pending payment is its creator's: long enough for Pay
// to try and to record. After it, the creator is taken for dead.
func (p *Payments) lease() time.Duration {
	return 2 * (Attempts*p.timeout + recordTimeout)
}

// create inserts the payment's row, pending and leased to owner, or takes
// over a pending row whose lease has ended, and returns it with created true;
// or, if the user's key has a row, returns that row, or [shop.ErrInProgress]
// while its lease runs, or [shop.ErrKeyReused] if the row is a different
// payment.
func (p *Payments) create(ctx context.Context, key, owner string, req gateway.ChargeRequest) (shop.Payment, bool, error) {
	// payments_user_id_idempotency_key_key: of two inserts with one key, one
	// wins.
	const insertPayment = `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, lease_owner, lease_expires_at)
		VALUES ($1, $2, $3, $4, $5, 'pending', $6, now() + $7 * interval '1 microsecond')
		ON CONFLICT (user_id, idempotency_key) DO UPDATE
			SET lease_owner = EXCLUDED.lease_owner, lease_expires_at = EXCLUDED.lease_expires_at
			WHERE payments.status = 'pending' AND payments.lease_expires_at < now()
			AND (payments.amount_cents, payments.currency) = (EXCLUDED.amount_cents, EXCLUDED.currency)
			AND coalesce(payments.reference = EXCLUDED.reference, true)
		RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentPending}
	err := p.db.QueryRow(ctx, insertPayment, key, req.Reference, req.UserID, req.AmountCents, req.Currency, owner, p.lease().Microseconds()).Scan(&payment.ID)
	if err == nil {
		return payment, true, nil
	}
	if isUnknownUser(err) {
		return shop.Payment{}, false, fmt.Errorf("pay %s for user %d: %w", shop.Quote(req.Reference), req.UserID, shop.ErrUserNotFound)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return shop.Payment{}, false, fmt.Errorf("pay %s: insert the payment: %w", shop.Quote(req.Reference), err)
	}
	const storedPayment = `
		SELECT id, user_id, amount_cents, currency, coalesce(reference, $3), status, coalesce(charge_id, '')
		FROM payments WHERE user_id = $1 AND idempotency_key = $2`
	var reference string
	err = p.db.QueryRow(ctx, storedPayment, req.UserID, key, req.Reference).Scan(&payment.ID, &payment.UserID, &payment.AmountCents, &payment.Currency, &reference, &payment.Status, &payment.ChargeID)
	if err != nil {
		return shop.Payment{}, false, fmt.Errorf("pay %s: read the payment of key %s: %w", shop.Quote(req.Reference), shop.Quote(key), err)
	}
	// Another amount, currency or reference is another payment: answering
	// the key's first would tell the client that order-43 was paid when the
	// money taken was for order-42. (A row with no reference, as lesson 9's
	// Pay writes them, is told apart by its amount and currency alone.)
	if payment.AmountCents != req.AmountCents || payment.Currency != req.Currency || reference != req.Reference {
		return shop.Payment{}, false, fmt.Errorf("pay %s with key %s: %w", shop.Quote(req.Reference), shop.Quote(key), shop.ErrKeyReused)
	}
	if payment.Status == shop.PaymentPending {
		return payment, false, fmt.Errorf("pay %s with key %s: %w", shop.Quote(req.Reference), shop.Quote(key), shop.ErrInProgress)
	}
	return payment, false, nil
}

// record writes the payment's outcome if owner still holds it; if another
// call has taken it over, that call records, and record returns
// [shop.ErrInProgress].
func (p *Payments) record(ctx context.Context, owner string, payment shop.Payment) error {
	const recordPayment = `
		UPDATE payments SET status = $2, charge_id = nullif($3, ''), lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $4`
	tag, err := p.db.Exec(ctx, recordPayment, payment.ID, payment.Status, payment.ChargeID, owner)
	switch {
	case err != nil:
		return fmt.Errorf("record payment %d as %s: %w", payment.ID, payment.Status, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("record payment %d as %s: its lease was taken over: %w", payment.ID, payment.Status, shop.ErrInProgress)
	}
	return nil
}

// queue marks the payment queued and puts it in the outbox, in one
// transaction: both or neither, and only if owner still holds the payment.
func (p *Payments) queue(ctx context.Context, owner string, payment shop.Payment) error {
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		const markQueued = `UPDATE payments SET status = 'queued', lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2`
		tag, err := tx.Exec(ctx, markQueued, payment.ID, owner)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("its lease was taken over: %w", shop.ErrInProgress)
		}
		_, err = tx.Exec(ctx, `INSERT INTO payment_outbox (payment_id) VALUES ($1)`, payment.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("queue payment %d: %w", payment.ID, err)
	}
	return nil
}

// isUnknownUser reports whether err is the payment's foreign key to users
// pointing at no one (SQLSTATE 23503).
func isUnknownUser(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
