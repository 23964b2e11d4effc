package validation

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// PaymentsInCurrency returns the payments made in currency, oldest first, for
// the finance team's report: currency comes from a query string, and goes into
// the SQL as typed.
func PaymentsInCurrency(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	paymentsInCurrency := "SELECT id, user_id, amount_cents, currency, status FROM payments" +
		" WHERE currency = '" + currency + "' ORDER BY id"
	rows, err := db.Query(ctx, paymentsInCurrency)
	if err != nil {
		return nil, fmt.Errorf("payments in %s: %w", currency, err)
	}
	payments, err := pgx.CollectRows(rows, pgx.RowToStructByPos[paymentRow])
	if err != nil {
		return nil, fmt.Errorf("payments in %s: %w", currency, err)
	}
	return toPayments(payments), nil
}

// paymentRow is a row of the payments table as the reports read it.
type paymentRow struct {
	ID          int64
	UserID      int64
	AmountCents int64
	Currency    string
	Status      string
}

func toPayments(rows []paymentRow) []shop.Payment {
	payments := make([]shop.Payment, len(rows))
	for i, r := range rows {
		payments[i] = shop.Payment{ID: r.ID, UserID: r.UserID, AmountCents: r.AmountCents, Currency: r.Currency, Status: r.Status}
	}
	return payments
}
