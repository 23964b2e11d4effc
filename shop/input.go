package shop

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalidPage is returned for a page request no listing can answer: a page
// size below 1 or above MaxPageSize, a page number below 1 or so deep that its
// offset does not fit in an int64, or a page token the listing did not make.
var ErrInvalidPage = errors.New("invalid page request")

// MaxPageSize is the most rows a page of any listing holds. A larger request
// is refused rather than cut, so that a caller never mistakes a short page
// for the last one.
const MaxPageSize = 1000

// CheckPageSize returns nil for a page size from 1 to MaxPageSize, and an
// error that wraps ErrInvalidPage otherwise.
func CheckPageSize(size int) error {
	if size < 1 || size > MaxPageSize {
		return fmt.Errorf("%w: page size %d: want 1 to %d", ErrInvalidPage, size, MaxPageSize)
	}
	return nil
}

// PageOffset returns how many rows come before page (from 1) of size rows a
// page, or an error that wraps ErrInvalidPage when the size is out of range
// or the page cannot exist (its offset would overflow).
func PageOffset(page, size int) (int64, error) {
	if err := CheckPageSize(size); err != nil {
		return 0, err
	}
	if page < 1 || int64(page-1) > math.MaxInt64/int64(size) {
		return 0, fmt.Errorf("%w: page %d of %d rows: want 1 to %d", ErrInvalidPage, page, size, math.MaxInt64/int64(size)+1)
	}
	return int64(page-1) * int64(size), nil
}

// QuoteMax is the most bytes of a caller's input an error message quotes.
const QuoteMax = 40

// Quote returns s quoted as %q quotes it, cut after QuoteMax bytes (at a
// character boundary, with the full length said), so that an error never
// echoes a megabyte of hostile input back into logs.
func Quote(s string) string {
	if len(s) <= QuoteMax {
		return strconv.Quote(s)
	}
	cut := QuoteMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}

// likeEscaper escapes what LIKE and ILIKE read as other than itself.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// EscapeLike returns s with LIKE's wildcards (% and _) and its escape
// character (\) escaped, so that a pattern built from it, with ESCAPE '\',
// matches s as typed: a search for "100%" finds "100%", not "1000".
func EscapeLike(s string) string { return likeEscaper.Replace(s) }

// MaxSearchTermSize is the longest search term a search accepts, in bytes:
// longer than any product's name, short enough that matching it costs what
// an ordinary search costs (matching a megabyte-long pattern against every
// name takes the database seconds).
const MaxSearchTermSize = 200

// ErrSearchTermTooLong is returned for a search term longer than
// MaxSearchTermSize.
var ErrSearchTermTooLong = errors.New("search term too long")

// CheckSearchTerm returns nil for a term of at most MaxSearchTermSize bytes,
// and an error that wraps ErrSearchTermTooLong otherwise.
func CheckSearchTerm(term string) error {
	if len(term) > MaxSearchTermSize {
		return fmt.Errorf("%w: %d bytes, want at most %d", ErrSearchTermTooLong, len(term), MaxSearchTermSize)
	}
	return nil
}
