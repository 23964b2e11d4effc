package validation

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// PaymentsInCurrency returns the payments made in currency, oldest first, for
// the finance team's report. A currency the shop does not take is a
// [*ValidationError]; the one it takes travels as a parameter.
func PaymentsInCurrency(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	if err := checkCurrency(currency); err != nil {
		return nil, fmt.Errorf("payments in a currency: %w", err)
	}
	// No index: the report runs once a day over a table it reads whole.
	const paymentsInCurrency = `
		SELECT id, user_id, amount_cents, currency, status FROM payments
		WHERE currency = $1 ORDER BY id`
	rows, err := db.Query(ctx, paymentsInCurrency, currency)
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
