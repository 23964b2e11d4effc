package circuitbreaker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Reconciler settles the payments [Payments.Pay] left pending: the call that
// made one died, or lost the database, between its charge and its record, and
// nobody came back with the key. The money may be taken and the row say
// nothing of it. Once the payment's lease has ended, its maker is taken for
// dead and the Reconciler asks the gateway what it made under the payment's
// key, as lesson 9's reconcile does, and records the answer.
type Reconciler struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	timeout time.Duration
	breaker Guard
	lease   time.Duration
}

// NewReconciler returns a Reconciler that asks gw behind breaker, giving each
// call timeout, and records in db; or, for a configuration [NewPayments]
// refuses, its error.
func NewReconciler(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration, breaker Guard) (*Reconciler, error) {
	if err := checkConfig("reconciler", db, gw, timeout, breaker); err != nil {
		return nil, err
	}
	return &Reconciler{db: db, gateway: gw, timeout: timeout, breaker: breaker, lease: timeout + recordTimeout}, nil
}

// SettleStale settles the pending payments whose lease has ended, the
// longest-stale first, until none is left or ctx is done, and returns how
// many it settled. It stops at the first outage, or the breaker open, and
// gives that payment back at once: the rest wait for the next run.
//
// Each payment is taken over as a call with its key would take it (its lease
// given to the Reconciler: a call with the key meanwhile gets
// [shop.ErrInProgress]), and settled by what the gateway says of its key
// ([gateway.Client.ChargeByKey], which never charges): charged, with the
// charge the gateway made, or failed if it made none. A failed payment is
// refused and uncharged: its key answers failed from then on, and the client
// pays again with a new key. The lease of [Payments] is twice as long as a
// call to Pay can take, so the maker's last charge has ended before its
// payment is looked up.
func (r *Reconciler) SettleStale(ctx context.Context) (int, error) {
	settled := 0
	for ctx.Err() == nil {
		more, err := r.settleNext(ctx)
		if err != nil || !more {
			return settled, err
		}
		settled++
	}
	return settled, nil
}

// Run settles the stale payments (SettleStale) at once and then every
// interval, until ctx is done, as [Relay.Run] sends the queued ones.
func (r *Reconciler) Run(ctx context.Context, every time.Duration, onError func(error)) error {
	// payments_stale_idx.
	const anyStale = `SELECT EXISTS (SELECT FROM payments WHERE status = 'pending' AND lease_expires_at < now())`
	return runEvery(ctx, "reconciler", every, r.db, anyStale, r.SettleStale, onError)
}

// settleNext settles the pending payment whose lease ended first; more is
// false when there is none.
func (r *Reconciler) settleNext(ctx context.Context) (more bool, err error) {
	// Once taken, a payment is settled even if the caller leaves meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.lease)
	defer cancel()
	owner := rand.Text()
	// payments_stale_idx: the pending rows, by the end of their lease.
	const takeStale = `
		UPDATE payments SET lease_owner = $1, lease_expires_at = now() + $2 * interval '1 microsecond'
		WHERE id = (
			SELECT id FROM payments
			WHERE status = 'pending' AND lease_expires_at < now()
			ORDER BY lease_expires_at
			LIMIT 1
			FOR UPDATE SKIP LOCKED)
		RETURNING id, idempotency_key, user_id`
	var id, userID int64
	var key string
	err = r.db.QueryRow(ctx, takeStale, owner, r.lease.Microseconds()).Scan(&id, &key, &userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take a stale payment: %w", err)
	}
	var charge gateway.Charge
	lookupErr := r.breaker.Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		c, err := r.gateway.ChargeByKey(ctx, userID, key)
		charge = c
		return err
	})
	payment := shop.Payment{ID: id, Status: shop.PaymentCharged, ChargeID: charge.ID}
	switch {
	case errors.Is(lookupErr, gateway.ErrNoCharge):
		payment.Status, payment.ChargeID = shop.PaymentFailed, ""
	case lookupErr != nil:
		// The gateway cannot say: give the payment back for the next run.
		const giveBack = `UPDATE payments SET lease_expires_at = now() WHERE id = $1 AND lease_owner = $2`
		_, err := r.db.Exec(ctx, giveBack, id, owner)
		return true, errors.Join(fmt.Errorf("settle payment %d: %w", id, lookupErr), err)
	}
	const recordPayment = `
		UPDATE payments SET status = $2, charge_id = nullif($3, ''), lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $4`
	tag, err := r.db.Exec(ctx, recordPayment, payment.ID, payment.Status, payment.ChargeID, owner)
	switch {
	case err != nil:
		return true, fmt.Errorf("settle payment %d as %s: %w", payment.ID, payment.Status, err)
	case tag.RowsAffected() == 0:
		return true, fmt.Errorf("settle payment %d as %s: its lease was taken over: %w", payment.ID, payment.Status, shop.ErrInProgress)
	}
	return true, nil
}
