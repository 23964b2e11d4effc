package validation

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/validation"
	scalable "works-vs-scales/scalable/validation"
	"works-vs-scales/shop"
)

// Lesson 8's exercise, in exercises/validation. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise08, is in exercise_test.go, behind the exercise tag.

type paymentsInCurrencyFunc func(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error)

// checkExercise08 says what is still wrong with an answer to lesson 8's
// exercise, or nil when it is done: the euro payments for "EUR", and an error,
// with no payments, for SQL passed as a currency. db must be a copy of the
// shop: the check writes three payments.
func checkExercise08(t testing.TB, db *pgxpool.Pool, paymentsIn paymentsInCurrencyFunc) error {
	ctx := context.Background()
	const insertPayments = `INSERT INTO payments (user_id, amount_cents, currency)
		VALUES (1, 1250, 'EUR'), (2, 999, 'USD'), (3, 40000, 'EUR')`
	if _, err := db.Exec(ctx, insertPayments); err != nil {
		return fmt.Errorf("the payments to report on: %w", err)
	}
	recorded, queries := pgtest.RecordQueries(ctx)
	euros, err := paymentsIn(recorded, db, "EUR")
	if err != nil {
		return fmt.Errorf("your PaymentsInCurrency(EUR): %w", err)
	}
	amounts := make([]int64, len(euros))
	for i, p := range euros {
		amounts[i] = p.AmountCents
	}
	if diff := cmp.Diff([]int64{1250, 40000}, amounts); diff != "" {
		return fmt.Errorf("PaymentsInCurrency(EUR) returned %+v, want the payments of 12.50 and 400.00 EUR, oldest first (amounts in cents, -want +yours):\n%s", euros, diff)
	}
	for _, q := range queries.Queries() {
		if strings.Contains(q.SQL, "'EUR'") {
			return fmt.Errorf("right payments, but the currency is pasted into your SQL (%s): send it as a parameter, apart from the statement; "+
				"there is no input trusted enough to become SQL", strings.Join(strings.Fields(q.SQL), " "))
		}
	}
	const takenCount = `SELECT count(*) FROM payments WHERE currency = 'GBP'`
	var pounds int
	if err := db.QueryRow(ctx, takenCount).Scan(&pounds); err != nil {
		return fmt.Errorf("count the payments in GBP: %w", err)
	}
	got, err := paymentsIn(ctx, db, "GBP")
	if err != nil {
		return fmt.Errorf("PaymentsInCurrency(GBP), a currency the shop takes, with %d payments: %w: which currencies are valid is the shop's list (CHF, EUR, GBP, USD), not the payments made so far",
			pounds, err)
	}
	if len(got) != pounds {
		return fmt.Errorf("PaymentsInCurrency(GBP) returned %d payments, want the %d there are", len(got), pounds)
	}
	notTaken, err := paymentsIn(ctx, db, "JPY")
	if err == nil {
		return fmt.Errorf("PaymentsInCurrency(JPY) returned %d payments and no error: JPY has the form of a currency, but the shop does not take it (it takes CHF, EUR, GBP and USD); say so with an error",
			len(notTaken))
	}
	const hostile = "EUR' OR 'x'='x"
	leaked, err := paymentsIn(ctx, db, hostile)
	if len(leaked) > 0 {
		return fmt.Errorf("PaymentsInCurrency(%q) returned %d payments, %+v: the input became SQL", hostile, len(leaked), leaked)
	}
	if err == nil {
		return fmt.Errorf("PaymentsInCurrency(%q) returned %#v and no error: the SQL is safe, but say what is wrong with the currency: not a currency the shop takes", hostile, leaked)
	}
	t.Logf("EUR: 2 payments, the currency sent as a parameter; GBP: %d payments, no error; JPY and %q: refused (%v)", pounds, hostile, err)
	return nil
}

func TestExercise08CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise08(t, pgtest.ShopClone(t, shop.Small), naive.PaymentsInCurrency)
	require.ErrorContains(t, err, "the currency is pasted into your SQL")
	t.Log(err)
}

func TestExercise08CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		paymentsIn paymentsInCurrencyFunc
		want       string
	}{
		{"parameters, no check", paymentsWithoutCheck, "JPY has the form of a currency, but the shop does not take it"},
		{"quotes doubled by hand", paymentsQuotesDoubled, "the currency is pasted into your SQL"},
		{"a blocklist of quotes", paymentsBlockingQuotes, "the currency is pasted into your SQL"},
		{"three capital letters", paymentsOfAnyCode, "JPY has the form of a currency, but the shop does not take it"},
		{"a currency with payments", paymentsOfKnownCurrency, "which currencies are valid is the shop's list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise08(t, pgtest.ShopClone(t, shop.Small), tc.paymentsIn)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise08CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise08(t, pgtest.ShopClone(t, shop.Small), scalable.PaymentsInCurrency))
}

// paymentsWithoutCheck is a wrong answer to exercise 8: the currency is a
// parameter, so no SQL gets in, but a currency the shop does not take is
// answered with no payments and no error.
func paymentsWithoutCheck(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	const paymentsInCurrency = `SELECT id, user_id, amount_cents, currency, status FROM payments
		WHERE currency = $1 ORDER BY id`
	return queryPayments(ctx, db, paymentsInCurrency, currency)
}

// paymentsQuotesDoubled is a wrong answer to exercise 8: it escapes the
// quotes by hand and pastes the currency into the SQL.
func paymentsQuotesDoubled(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	query := `SELECT id, user_id, amount_cents, currency, status FROM payments
		WHERE currency = '` + strings.ReplaceAll(currency, "'", "''") + `' ORDER BY id`
	return queryPayments(ctx, db, query)
}

func queryPayments(ctx context.Context, db *pgxpool.Pool, query string, args ...any) ([]shop.Payment, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Payment, error) {
		var p shop.Payment
		err := row.Scan(&p.ID, &p.UserID, &p.AmountCents, &p.Currency, &p.Status)
		return p, err
	})
}

// The wrong answers below are written from the lesson's "Why it breaks"
// (every input trusted) as a trainee writes them: each distrusts the input
// in its own way, and not the way the lesson does.

// paymentsBlockingQuotes is a wrong answer to exercise 8: it refuses a
// currency with a quote, a semicolon or a comment in it, and pastes the rest
// into the SQL: a list of what is forbidden, where the lesson keeps a list of
// what is allowed, and the input still becomes SQL.
func paymentsBlockingQuotes(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	if strings.ContainsAny(currency, `'";\`) || strings.Contains(currency, "--") {
		return nil, fmt.Errorf("payments in %q: forbidden characters", currency)
	}
	query := `SELECT id, user_id, amount_cents, currency, status FROM payments
		WHERE currency = '` + currency + `' ORDER BY id`
	return queryPayments(ctx, db, query)
}

// paymentsOfAnyCode is a wrong answer to exercise 8: it accepts any three
// capital letters, the form of a currency code, and sends the currency as a
// parameter: no SQL gets in, but a code the shop does not take gets no
// payments and no error.
func paymentsOfAnyCode(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	if !regexp.MustCompile(`^[A-Z]{3}$`).MatchString(currency) {
		return nil, fmt.Errorf("payments in %q: not a currency code", currency)
	}
	return paymentsWithoutCheck(ctx, db, currency)
}

// paymentsOfKnownCurrency is a wrong answer to exercise 8: a currency is
// valid if a payment was made in it, which the database says: a currency the
// shop takes, with no payment yet, is refused.
func paymentsOfKnownCurrency(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	var known bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM payments WHERE currency = $1)`, currency).Scan(&known); err != nil {
		return nil, err
	}
	if !known {
		return nil, fmt.Errorf("payments in %q: unknown currency", currency)
	}
	return paymentsWithoutCheck(ctx, db, currency)
}
