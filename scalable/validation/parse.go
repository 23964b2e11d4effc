package validation

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"works-vs-scales/shop"
)

// MaxAmountCents is the largest payment accepted: 10,000.00 of any currency.
// Anything above is a typo or an attack, and a human should look at it.
const MaxAmountCents = 1_000_000

// Currencies are the currencies the shop takes, all with two decimal places.
var Currencies = []string{"CHF", "EUR", "GBP", "USD"}

// Why a field is rejected, matched with errors.Is through a [*ValidationError].
var (
	ErrMalformed           = errors.New("malformed")
	ErrNotPositive         = errors.New("not more than zero")
	ErrTooLarge            = fmt.Errorf("more than the limit of %d.%02d", MaxAmountCents/100, MaxAmountCents%100)
	ErrUnsupportedCurrency = fmt.Errorf("not a currency the shop takes (%s)", strings.Join(Currencies, ", "))
)

// ValidationError says which field of a request is wrong, what it held, and
// why (Err, one of the Err… reasons above).
type ValidationError struct {
	Field string
	Value string
	Err   error
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Field, shop.Quote(e.Value), e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// Payment is a payment request that passed every check.
type Payment struct {
	UserID      int64
	AmountCents int64
	Currency    string
}

// ParsePayment checks every field of req and returns the payment it asks for,
// or one [*ValidationError] per wrong field, joined.
//
// Money is parsed as text into whole cents, never through a float: 0.29 is 29
// cents, where float64 makes int64(0.29*100) 28.
func ParsePayment(req shop.PaymentRequest) (Payment, error) {
	userID, userErr := parseUserID(req.UserID)
	amountCents, amountErr := parseAmount(req.Amount)
	currencyErr := checkCurrency(req.Currency)
	if err := errors.Join(userErr, amountErr, currencyErr); err != nil {
		return Payment{}, err
	}
	return Payment{UserID: userID, AmountCents: amountCents, Currency: req.Currency}, nil
}

// parseUserID accepts a user id as decimal digits, with no sign or leading zero.
func parseUserID(text string) (int64, error) {
	invalid := func(reason error) (int64, error) {
		return 0, &ValidationError{Field: "user id", Value: text, Err: reason}
	}
	if text == "" || !allDigits(text) || text[0] == '0' && text != "0" {
		return invalid(ErrMalformed)
	}
	id, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return invalid(ErrMalformed) // more digits than an int64 holds
	}
	if id == 0 {
		return invalid(ErrNotPositive)
	}
	return id, nil
}

// parseAmount accepts an amount such as 12, 12.5 or 12.50 and returns it in
// cents: digits, then at most two decimals after a point.
func parseAmount(text string) (int64, error) {
	invalid := func(reason error) (int64, error) {
		return 0, &ValidationError{Field: "amount", Value: text, Err: reason}
	}
	units, fraction, hasPoint := strings.Cut(text, ".")
	if units == "" || !allDigits(units) || !allDigits(fraction) || len(fraction) > 2 || hasPoint && fraction == "" {
		return invalid(ErrMalformed)
	}
	if len(units) > 9 { // beyond any limit, and before ParseInt could overflow
		return invalid(ErrTooLarge)
	}
	whole, err := strconv.ParseInt(units, 10, 64)
	if err != nil {
		return invalid(ErrMalformed)
	}
	cents := whole * 100
	if fraction != "" {
		f, err := strconv.ParseInt((fraction + "0")[:2], 10, 64)
		if err != nil {
			return invalid(ErrMalformed)
		}
		cents += f
	}
	switch {
	case cents <= 0:
		return invalid(ErrNotPositive)
	case cents > MaxAmountCents:
		return invalid(ErrTooLarge)
	}
	return cents, nil
}

// checkCurrency accepts one of [Currencies], exactly as written there.
func checkCurrency(code string) error {
	if slices.Contains(Currencies, code) {
		return nil
	}
	return &ValidationError{Field: "currency", Value: code, Err: ErrUnsupportedCurrency}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
