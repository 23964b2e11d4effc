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
)

// Relay charges the payments queued in the outbox, when the gateway is back.
type Relay struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	timeout time.Duration
	breaker Guard
}

// NewRelay returns a Relay that charges through gw behind breaker, giving each
// call timeout; or, for a configuration [NewPayments] refuses, its error.
func NewRelay(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration, breaker Guard) (*Relay, error) {
	if err := checkConfig("relay", db, gw, timeout, breaker); err != nil {
		return nil, err
	}
	return &Relay{db: db, gateway: gw, timeout: timeout, breaker: breaker}, nil
}

// SendQueued charges queued payments, oldest first, until none is left or
// ctx is done, and returns how many it sent. It stops at the first outage, or
// the breaker open: the rest wait for the next run.
//
// Every payment is charged exactly once, however many relays run and however
// they fail. Each payment is taken in a transaction that locks its outbox row
// (FOR UPDATE SKIP LOCKED: another relay takes the next one) and marks it sent
// only after the charge. If the relay dies between the two, the payment is
// sent again, with its idempotency key, and the gateway answers with the
// charge it made the first time.
//
// A payment taken before ctx ends is finished, not dropped halfway: its
// charge and its record go on, within the relay's timeout and a few seconds
// for the database, so that a service shutting down leaves no payment charged
// and still queued until it starts again.
func (r *Relay) SendQueued(ctx context.Context) (int, error) {
	sent := 0
	for ctx.Err() == nil {
		more, err := r.sendNext(ctx)
		if err != nil || !more {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

// Run sends the queued payments (SendQueued) at once and then every interval,
// until ctx is done: a round stopped by an outage or the open breaker leaves
// the rest to the next. A round with nothing queued costs one read, which
// locks nothing. Run passes each round's error to onError, if not nil, and
// returns once ctx is done and the payment at hand is finished. An interval
// that is not positive is an error wrapping [shop.ErrInvalidConfig].
func (r *Relay) Run(ctx context.Context, every time.Duration, onError func(error)) error {
	// payment_outbox_unsent_idx.
	const anyQueued = `SELECT EXISTS (SELECT FROM payment_outbox WHERE sent_at IS NULL)`
	return runEvery(ctx, "relay", every, r.db, anyQueued, r.SendQueued, onError)
}

// sendNext sends the oldest queued payment no other relay holds; more is false
// when there is none.
func (r *Relay) sendNext(ctx context.Context) (more bool, err error) {
	// Once taken, a payment is finished even if the caller leaves meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout+recordTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, r.db, func(tx pgx.Tx) error {
		// payment_outbox_unsent_idx: the unsent rows, in queue order.
		const nextQueued = `
			SELECT o.id, p.id, p.idempotency_key, coalesce(p.reference, ''), p.user_id, p.amount_cents, p.currency
			FROM payment_outbox o JOIN payments p ON p.id = o.payment_id
			WHERE o.sent_at IS NULL
			ORDER BY o.id
			LIMIT 1
			FOR UPDATE OF o SKIP LOCKED`
		var outboxID int64
		var payment shop.Payment
		var key string
		var req gateway.ChargeRequest
		err := tx.QueryRow(ctx, nextQueued).Scan(&outboxID, &payment.ID, &key, &req.Reference, &req.UserID, &req.AmountCents, &req.Currency)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("next queued payment: %w", err)
		}
		more = true
		var charge gateway.Charge
		chargeErr := r.breaker.Do(ctx, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, r.timeout)
			defer cancel()
			c, err := r.gateway.Charge(ctx, req, key)
			charge = c
			return err
		})
		status := shop.PaymentCharged
		switch {
		case errors.Is(chargeErr, ErrOpen) || IsOutage(chargeErr):
			return fmt.Errorf("send payment %d: %w", payment.ID, chargeErr) // rolls back: still queued
		case chargeErr != nil:
			status = shop.PaymentFailed // refused for good: sending it again gets the same answer
		}
		const markCharged = `UPDATE payments SET status = $2, charge_id = nullif($3, '') WHERE id = $1`
		if _, err := tx.Exec(ctx, markCharged, payment.ID, status, charge.ID); err != nil {
			return fmt.Errorf("record payment %d as %s: %w", payment.ID, status, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE payment_outbox SET sent_at = now() WHERE id = $1`, outboxID); err != nil {
			return fmt.Errorf("mark payment %d sent: %w", payment.ID, err)
		}
		return nil
	})
	return more, err
}

// runEvery calls round at once and then every interval until ctx is done,
// when the query anyWork says there is work, passing its errors to onError
// (if not nil): the loop of [Relay.Run] and [Reconciler.Run].
func runEvery(ctx context.Context, what string, every time.Duration, db *pgxpool.Pool, anyWork string, round func(context.Context) (int, error), onError func(error)) error {
	if every <= 0 {
		return fmt.Errorf("%s: run every %v: want a positive interval: %w", what, every, shop.ErrInvalidConfig)
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		var work bool
		err := db.QueryRow(ctx, anyWork).Scan(&work)
		if err == nil && work {
			_, err = round(ctx)
		}
		if err != nil && onError != nil && ctx.Err() == nil {
			onError(fmt.Errorf("%s: %w", what, err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
