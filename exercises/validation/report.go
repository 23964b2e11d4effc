// Package validation is lesson 8's exercise: yours to change.
//
// The finance team's report takes the currency from a query string, and
// PaymentsInCurrency below pastes it into its SQL through the naive version.
// Make it refuse a currency the shop does not take, with an error that says
// so, and keep every input out of the SQL; then check:
//
//	go test -tags exercise -run Exercise08 ./bench/validation
//
// The check asks for the euro payments, looking at the SQL you send, then for
// GBP (taken, no payments yet), JPY (not taken) and "EUR' OR 'x'='x". The
// shop takes CHF, EUR, GBP and USD.
// One answer
// is in works-vs-scales/scalable/validation.
package validation

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/validation"
	"works-vs-scales/shop"
)

// PaymentsInCurrency returns the payments made in currency, oldest first.
func PaymentsInCurrency(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	return naive.PaymentsInCurrency(ctx, db, currency) // replace me
}
