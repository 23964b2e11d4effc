package validation_test

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/scalable/validation"
	"works-vs-scales/shop"
)

func ExampleParsePayment() {
	_, err := validation.ParsePayment(shop.PaymentRequest{UserID: "42", Amount: "-5", Currency: "eur"})
	fmt.Println(err)

	var invalid *validation.ValidationError
	if errors.As(err, &invalid) {
		fmt.Printf("first wrong field: %s\n", invalid.Field)
	}
	fmt.Println(errors.Is(err, validation.ErrUnsupportedCurrency))
	// Output:
	// amount "-5": malformed
	// currency "eur": not a currency the shop takes (CHF, EUR, GBP, USD)
	// first wrong field: amount
	// true
}

func TestParsePayment(t *testing.T) {
	valid := []struct {
		amount string
		cents  int64
	}{
		{"12", 1200}, {"12.5", 1250}, {"12.50", 1250}, {"0.29", 29}, {"0.01", 1}, {"10000", 1_000_000}, {"007.00", 700},
	}
	for _, tc := range valid {
		p, err := validation.ParsePayment(shop.PaymentRequest{UserID: "42", Amount: tc.amount, Currency: "EUR"})
		require.NoError(t, err, tc.amount)
		assert.Equal(t, validation.Payment{UserID: 42, AmountCents: tc.cents, Currency: "EUR"}, p, tc.amount)
	}

	invalid := []struct {
		req    shop.PaymentRequest
		field  string
		reason error
	}{
		{shop.PaymentRequest{UserID: "42", Amount: "0", Currency: "EUR"}, "amount", validation.ErrNotPositive},
		{shop.PaymentRequest{UserID: "42", Amount: "-5", Currency: "EUR"}, "amount", validation.ErrMalformed},
		{shop.PaymentRequest{UserID: "42", Amount: "NaN", Currency: "EUR"}, "amount", validation.ErrMalformed},
		{shop.PaymentRequest{UserID: "42", Amount: "1e3", Currency: "EUR"}, "amount", validation.ErrMalformed},
		{shop.PaymentRequest{UserID: "42", Amount: "1.234", Currency: "EUR"}, "amount", validation.ErrMalformed},
		{shop.PaymentRequest{UserID: "42", Amount: "10000.01", Currency: "EUR"}, "amount", validation.ErrTooLarge},
		{shop.PaymentRequest{UserID: "42", Amount: "99999999999999999999", Currency: "EUR"}, "amount", validation.ErrTooLarge},
		{shop.PaymentRequest{UserID: "42", Amount: "5", Currency: "XXX"}, "currency", validation.ErrUnsupportedCurrency},
		{shop.PaymentRequest{UserID: "42", Amount: "5", Currency: "EUR'); DROP TABLE payments; --"}, "currency", validation.ErrUnsupportedCurrency},
		{shop.PaymentRequest{UserID: "0", Amount: "5", Currency: "EUR"}, "user id", validation.ErrNotPositive},
		{shop.PaymentRequest{UserID: "1 OR 1=1", Amount: "5", Currency: "EUR"}, "user id", validation.ErrMalformed},
		{shop.PaymentRequest{UserID: "99999999999999999999", Amount: "5", Currency: "EUR"}, "user id", validation.ErrMalformed},
	}
	for _, tc := range invalid {
		_, err := validation.ParsePayment(tc.req)
		var invalid *validation.ValidationError
		require.ErrorAs(t, err, &invalid, "%+v", tc.req)
		assert.Equal(t, tc.field, invalid.Field, "%+v", tc.req)
		assert.ErrorIs(t, err, tc.reason, "%+v", tc.req)
	}
}

func TestParsePaymentReportsEveryWrongField(t *testing.T) {
	_, err := validation.ParsePayment(shop.PaymentRequest{UserID: "x", Amount: "", Currency: ""})
	assert.EqualError(t, err, "user id \"x\": malformed\namount \"\": malformed\ncurrency \"\": not a currency the shop takes (CHF, EUR, GBP, USD)")
}

func TestValidationErrorCutsLongValues(t *testing.T) {
	_, err := validation.ParsePayment(shop.PaymentRequest{UserID: "1", Amount: "1", Currency: string(make([]byte, 10_000))})
	assert.Less(t, len(err.Error()), 300, "a client cannot fill the logs through an error message")
}

// The specification, written independently of the parser: what a valid field
// looks like, and the amount's value computed with exact rationals.
var (
	userIDSpec = regexp.MustCompile(`^[1-9][0-9]*$`)
	amountSpec = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,2})?$`)
)

// specPayment returns what ParsePayment should make of req, and whether it
// should accept it at all.
func specPayment(req shop.PaymentRequest) (validation.Payment, bool) {
	var p validation.Payment
	if !userIDSpec.MatchString(req.UserID) || len(req.UserID) > 19 {
		return p, false
	}
	id, ok := new(big.Int).SetString(req.UserID, 10)
	if !ok || !id.IsInt64() {
		return p, false
	}
	if !amountSpec.MatchString(req.Amount) {
		return p, false
	}
	amount, ok := new(big.Rat).SetString(req.Amount)
	if !ok {
		return p, false
	}
	cents := new(big.Rat).Mul(amount, big.NewRat(100, 1))
	if cents.Sign() <= 0 || cents.Cmp(big.NewRat(validation.MaxAmountCents, 1)) > 0 || !cents.IsInt() {
		return p, false
	}
	if !slices.Contains(validation.Currencies, req.Currency) {
		return p, false
	}
	return validation.Payment{UserID: id.Int64(), AmountCents: cents.Num().Int64(), Currency: req.Currency}, true
}

// FuzzParsePayment checks that the parser never panics, accepts exactly what
// the specification accepts, and returns the specification's values. The seed
// corpus is in testdata/fuzz/FuzzParsePayment; `go test -fuzz` adds to it.
func FuzzParsePayment(f *testing.F) {
	f.Add("42", "12.50", "EUR")
	f.Add("1", "10000.00", "USD")
	f.Add("9223372036854775807", "0.01", "CHF")
	f.Fuzz(func(t *testing.T, userID, amount, currency string) {
		req := shop.PaymentRequest{UserID: userID, Amount: amount, Currency: currency}
		got, err := validation.ParsePayment(req)
		want, ok := specPayment(req)
		if !ok {
			var invalid *validation.ValidationError
			if !errors.As(err, &invalid) {
				t.Fatalf("ParsePayment(%+v) = %+v, %v; want a *ValidationError", req, got, err)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("ParsePayment(%+v) = %+v, %v; want %+v", req, got, err, want)
		}
	})
}
