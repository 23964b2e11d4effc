// Package ledger records the shop's payments under their idempotency keys, as
// every payment path that takes a key must: a key the user has used answers
// with its payment, and of two callers recording one key, the second gets the
// first's payment.
//
// Lesson 10's naive version records through it, so that its code holds what
// that lesson is about, its tries and their timeouts, and no more. The
// lessons that teach idempotency (9, and 10's outbox) do it themselves, with
// a lease on a pending row; this is the simpler way, for a path that records
// a payment only once it is charged.
package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Find returns the payment that user userID recorded under key, if it is the
// payment asked for (amountCents in currency); an error wrapping
// [shop.ErrKeyReused] if the key paid for something else; or an error wrapping
// [pgx.ErrNoRows] if the key has no payment yet.
func Find(ctx context.Context, db *pgxpool.Pool, userID int64, key string, amountCents int64, currency string) (shop.Payment, error) {
	const storedPayment = `
		SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE user_id = $1 AND idempotency_key = $2`
	var stored shop.Payment
	err := db.QueryRow(ctx, storedPayment, userID, key).Scan(&stored.ID, &stored.UserID, &stored.AmountCents, &stored.Currency, &stored.Status, &stored.ChargeID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return shop.Payment{}, fmt.Errorf("the payment of user %d's key %s: %w", userID, shop.Quote(key), err)
	case err != nil:
		return shop.Payment{}, fmt.Errorf("read the payment of user %d's key %s: %w", userID, shop.Quote(key), err)
	case stored.AmountCents != amountCents || stored.Currency != currency:
		return shop.Payment{}, fmt.Errorf("user %d's key %s paid %d %s: %w", userID, shop.Quote(key), stored.AmountCents, shop.Quote(stored.Currency), shop.ErrKeyReused)
	}
	return stored, nil
}

// RecordCharged records payment, which the gateway charged, under the user's
// key, with reference (the shop's name for what is paid), and returns it with
// its id. If a caller with the same key recorded it first, after the same
// charge (a gateway answers one key with one charge), it returns that
// caller's payment, as [Find] does, rather than fail.
func RecordCharged(ctx context.Context, db *pgxpool.Pool, key, reference string, payment shop.Payment) (shop.Payment, error) {
	const insertPayment = `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, $5, 'charged', $6) RETURNING id`
	payment.Status = shop.PaymentCharged
	err := db.QueryRow(ctx, insertPayment, key, reference, payment.UserID, payment.AmountCents, payment.Currency, payment.ChargeID).Scan(&payment.ID)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return Find(ctx, db, payment.UserID, key, payment.AmountCents, payment.Currency)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s, charged as %s: %w", shop.Quote(reference), payment.ChargeID, err)
	}
	return payment, nil
}
