package validation

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/validation"
	scalable "works-vs-scales/scalable/validation"
	"works-vs-scales/shop"
)

var hostileOut = flag.String("hostile-out", "", "write lesson 8's table of what each input did to this file")

type processPaymentFunc func(ctx context.Context, db *pgxpool.Pool, req shop.PaymentRequest) (shop.Payment, error)

// paymentInput is one request of lesson 8's table, and what each version
// writes for it: the rows as "user amount currency", or nothing.
type paymentInput struct {
	what                    string
	req                     shop.PaymentRequest
	naiveRows, scalableRows []string
}

var paymentInputs = []paymentInput{
	{"a good payment", shop.PaymentRequest{UserID: "42", Amount: "12.50", Currency: "EUR"},
		[]string{"42 12.50 EUR"}, []string{"42 12.50 EUR"}},
	{"cents a float cannot hold", shop.PaymentRequest{UserID: "42", Amount: "0.29", Currency: "EUR"},
		[]string{"42 0.28 EUR"}, []string{"42 0.29 EUR"}},
	{"a negative amount: a refund", shop.PaymentRequest{UserID: "42", Amount: "-500", Currency: "EUR"},
		[]string{"42 -500.00 EUR"}, nil},
	{"not a number", shop.PaymentRequest{UserID: "42", Amount: "NaN", Currency: "EUR"},
		[]string{"42 * EUR"}, nil}, // Go leaves int64(NaN) to the platform: garbage, but some number
	{"a currency the shop does not take", shop.PaymentRequest{UserID: "42", Amount: "5", Currency: "XYZ"},
		[]string{"42 5.00 XYZ"}, nil},
	{"a user who does not exist", shop.PaymentRequest{UserID: "999999999", Amount: "5", Currency: "EUR"},
		nil, nil},
	{"SQL in the currency: a second row, charged to user 1", shop.PaymentRequest{UserID: "42", Amount: "5", Currency: "EUR'), (1, 1000000, 'EUR"},
		[]string{"42 5.00 EUR", "1 10000.00 EUR"}, nil},
	{"SQL in the currency: a second statement", shop.PaymentRequest{UserID: "42", Amount: "5", Currency: "EUR'); DELETE FROM payments; --"},
		nil, nil},
}

// processEach runs every input of lesson 8 through process on a copy of the
// shop and returns, per input, the rows it wrote and its error.
func processEach(tb testing.TB, process processPaymentFunc) (rows [][]string, errs []error) {
	return processEachOn(tb, pgtest.ShopClone(tb, shop.Small), process)
}

// processEachOn is processEach on a database of the caller's.
func processEachOn(tb testing.TB, db *pgxpool.Pool, process processPaymentFunc) (rows [][]string, errs []error) {
	ctx := context.Background()
	for _, input := range paymentInputs {
		var lastID int64
		require.NoError(tb, db.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM payments").Scan(&lastID))
		_, err := process(ctx, db, input.req)
		written, qerr := db.Query(ctx, `
			SELECT format('%s %s %s', user_id, round(amount_cents::numeric / 100, 2), currency)
			FROM payments WHERE id > $1 ORDER BY id`, lastID)
		require.NoError(tb, qerr)
		got, qerr := pgx.CollectRows(written, pgx.RowTo[string])
		require.NoError(tb, qerr)
		if len(got) == 0 {
			got = nil
		}
		rows, errs = append(rows, got), append(errs, err)
	}
	return rows, errs
}

// wrongRows counts the rows written for lesson 8's inputs that checked input
// would not have written: every row of an input whose rows differ from the
// scalable version's (the specification: nothing for a bad input, the exact
// amount for a good one).
func wrongRows(rows [][]string) int {
	wrong := 0
	for i, input := range paymentInputs {
		if !rowsMatch(input.scalableRows, rows[i]) {
			wrong += len(rows[i])
		}
	}
	return wrong
}

func TestProcessPaymentOnHostileInput(t *testing.T) {
	naiveRows, naiveErrs := processEach(t, naive.ProcessPayment)
	scalableRows, scalableErrs := processEach(t, scalable.ProcessPayment)
	for i, input := range paymentInputs {
		assert.True(t, rowsMatch(input.naiveRows, naiveRows[i]), "naive, %s: wrote %q, want %q", input.what, naiveRows[i], input.naiveRows)
		assert.True(t, rowsMatch(input.scalableRows, scalableRows[i]), "scalable, %s: wrote %q, want %q", input.what, scalableRows[i], input.scalableRows)
		if input.scalableRows == nil {
			require.Error(t, scalableErrs[i], input.what)
			var invalid *scalable.ValidationError
			assert.True(t, errors.As(scalableErrs[i], &invalid) || errors.Is(scalableErrs[i], shop.ErrUserNotFound),
				"scalable says what was wrong with %s: %v", input.what, scalableErrs[i])
		}
	}
	if *hostileOut != "" {
		writeHostileTable(t, *hostileOut, naiveRows, naiveErrs, scalableRows, scalableErrs)
	}
}

// rowsMatch reports whether the rows written match the patterns wanted, one
// for one; a * in a pattern stands for any text without a slash.
func rowsMatch(want, written []string) bool {
	if len(want) != len(written) {
		return false
	}
	for i := range want {
		if ok, _ := path.Match(want[i], written[i]); !ok {
			return false
		}
	}
	return true
}

func TestParametersKeepSQLOutOfTheStatement(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	hostile := "EUR'), (1, 1000000, 'EUR"
	_, err := db.Exec(ctx, "INSERT INTO payments (user_id, amount_cents, currency) VALUES ($1, $2, $3)", 42, 500, hostile)
	require.NoError(t, err)
	var rows int
	var currency string
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*), max(currency) FROM payments").Scan(&rows, &currency))
	assert.Equal(t, 1, rows, "one row: the input stayed a value")
	assert.Equal(t, hostile, currency, "stored as the text it is")
}

// writeHostileTable writes lesson 8's table: each input, and what each
// version wrote or answered.
func writeHostileTable(t *testing.T, path string, naiveRows [][]string, naiveErrs []error, scalableRows [][]string, scalableErrs []error) {
	t.Helper()
	outcome := func(rows []string, err error) string {
		if err != nil {
			return "error: " + strings.ReplaceAll(err.Error(), "\n", "; ")
		}
		return "wrote " + strings.Join(rows, "; ")
	}
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var out strings.Builder
	fmt.Fprintf(&out, "Made by `go test -count 1 -run TestProcessPaymentOnHostileInput ./bench/validation -args -hostile-out=...` on %s, %s.\n\n",
		pgtest.ServerVersion(t), time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(&out, "| input | user id, amount, currency | naive | scalable |\n|---|---|---|---|\n")
	for i, input := range paymentInputs {
		fmt.Fprintf(&out, "| %s | `%s` | %s | %s |\n", input.what,
			cell(fmt.Sprintf("%s, %s, %s", input.req.UserID, input.req.Amount, input.req.Currency)),
			cell(outcome(naiveRows[i], naiveErrs[i])), cell(outcome(scalableRows[i], scalableErrs[i])))
	}
	require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
}

// BenchmarkProcessPayment measures what checking a payment costs next to
// recording it, and reports what the checks prevent: wrong-rows, the rows
// written for lesson 8's inputs (hostile ones included) that checked input
// would not have written.
//
// Each operation is a good payment of a different amount, as real traffic
// is: the naive version's SQL differs per request, so pgx's statement cache
// cannot hide what unique SQL costs (a prepare each time). The copy of the
// shop is made, and the inputs run, before the timer starts; autovacuum is
// off on the copy's payments so that it does not run inside one version's
// time. The lesson runs the versions in turns, each in a process of its own.
func BenchmarkProcessPayment(b *testing.B) {
	impls := []struct {
		name    string
		process processPaymentFunc
	}{{"naive", naive.ProcessPayment}, {"scalable", scalable.ProcessPayment}}
	reqs := make([]shop.PaymentRequest, 4096) // more than pgx's 512 cached statements
	for i := range reqs {
		reqs[i] = shop.PaymentRequest{UserID: "42", Amount: fmt.Sprintf("%d.%02d", 10+i/100, i%100), Currency: "EUR"}
	}
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			db := pgtest.ShopClone(b, shop.Small)
			if _, err := db.Exec(context.Background(), "ALTER TABLE payments SET (autovacuum_enabled = false)"); err != nil {
				b.Fatal(err)
			}
			written, _ := processEachOn(b, db, impl.process) // what it does with lesson 8's inputs
			wrong := wrongRows(written)
			ctx, counts := pgtest.CountQueries(context.Background())
			i := 0
			for b.Loop() {
				if _, err := impl.process(ctx, db, reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			benchkit.ReportCounts(b, counts)
			b.ReportMetric(float64(wrong), "wrong-rows")
		})
	}
}

// BenchmarkParsePayment measures the checks alone, without the database.
func BenchmarkParsePayment(b *testing.B) {
	req := shop.PaymentRequest{UserID: "42", Amount: "12.50", Currency: "EUR"}
	b.Run(benchkit.Name("impl", "scalable"), func(b *testing.B) {
		for b.Loop() {
			if _, err := scalable.ParsePayment(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestWrongRowsCountsWhatChecksPrevent pins the figure lesson 8's headline
// shows: the naive version writes 6 wrong rows for the 8 inputs (a rounded
// amount, a refund, NaN, an unknown currency, and the injected pair), the
// checked one none.
func TestWrongRowsCountsWhatChecksPrevent(t *testing.T) {
	naiveRows, _ := processEach(t, naive.ProcessPayment)
	scalableRows, _ := processEach(t, scalable.ProcessPayment)
	assert.Equal(t, 6, wrongRows(naiveRows))
	assert.Equal(t, 0, wrongRows(scalableRows))
}

// TestUniqueSQLCostsAPrepareEachTime pins the round trip lesson 8's timing
// explains: the naive version's SQL is new with every amount, so pgx prepares
// each payment's statement before running it, two round trips a payment; the
// checked version's one statement is prepared once per connection, then only
// run.
func TestUniqueSQLCostsAPrepareEachTime(t *testing.T) {
	const payments = 20
	for _, impl := range []struct {
		name    string
		process processPaymentFunc
	}{{"naive", naive.ProcessPayment}, {"scalable", scalable.ProcessPayment}} {
		db := pgtest.ShopClone(t, shop.Small)
		ctx, counts := pgtest.CountQueries(context.Background())
		for i := range payments {
			req := shop.PaymentRequest{UserID: "42", Amount: fmt.Sprintf("7.%02d", i), Currency: "EUR"}
			_, err := impl.process(ctx, db, req)
			require.NoError(t, err, "%s: payment of %s", impl.name, req.Amount)
		}
		assert.Equal(t, int64(payments), counts.RoundTrips(), "%s: one query a payment", impl.name)
		if impl.name == "naive" {
			assert.Equal(t, int64(payments), counts.Prepares(), "naive: a prepare a payment, its SQL new each time")
			continue
		}
		assert.LessOrEqual(t, counts.Prepares(), int64(db.Stat().TotalConns()), "scalable: at most a prepare per connection")
	}
}
