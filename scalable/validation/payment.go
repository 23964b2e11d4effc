// Package validation takes a payment as a client sent it and records it: it
// checks every field first, says which ones are wrong and why, and passes
// values to the database as parameters, never as SQL.
package validation

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ProcessPayment records the payment req asks for, as pending, and returns it.
// A request [ParsePayment] rejects returns its [*ValidationError]s, matched
// with errors.As; a user who does not exist, [shop.ErrUserNotFound].
func ProcessPayment(ctx context.Context, db *pgxpool.Pool, req shop.PaymentRequest) (shop.Payment, error) {
	payment, err := ParsePayment(req)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("process payment: %w", err)
	}
	// The values travel apart from the statement: no input can change it.
	const insertPayment = `
		INSERT INTO payments (user_id, amount_cents, currency) VALUES ($1, $2, $3)
		RETURNING id, user_id, amount_cents, currency, status`
	var p shop.Payment
	err = db.QueryRow(ctx, insertPayment, payment.UserID, payment.AmountCents, payment.Currency).
		Scan(&p.ID, &p.UserID, &p.AmountCents, &p.Currency, &p.Status)
	if isForeignKeyViolation(err) {
		return shop.Payment{}, fmt.Errorf("process payment for user %d: %w", payment.UserID, shop.ErrUserNotFound)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("process payment for user %d: %w", payment.UserID, err)
	}
	return p, nil
}

// isForeignKeyViolation reports whether err is PostgreSQL refusing a row that
// points at one that does not exist (SQLSTATE 23503).
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
