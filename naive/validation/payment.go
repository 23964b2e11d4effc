// Package validation takes a payment as a client sent it and records it: it
// trusts every field, and builds its SQL by pasting them in.
package validation

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ProcessPayment records the payment req asks for, as pending, and returns it.
// Whatever the client typed goes through: a negative amount, NaN, an unknown
// currency, or SQL.
func ProcessPayment(ctx context.Context, db *pgxpool.Pool, req shop.PaymentRequest) (shop.Payment, error) {
	amount, err := strconv.ParseFloat(req.Amount, 64)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("process payment: %w", err)
	}
	amountCents := int64(amount * 100)
	// The SQL is built by concatenation: each field becomes part of the statement.
	insertPayment := "INSERT INTO payments (user_id, amount_cents, currency) VALUES (" +
		req.UserID + ", " + strconv.FormatInt(amountCents, 10) + ", '" + req.Currency + "')" +
		" RETURNING id, user_id, amount_cents, currency, status"
	var p shop.Payment
	if err := db.QueryRow(ctx, insertPayment).Scan(&p.ID, &p.UserID, &p.AmountCents, &p.Currency, &p.Status); err != nil {
		return shop.Payment{}, fmt.Errorf("process payment: %w", err)
	}
	return p, nil
}
