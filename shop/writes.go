package shop

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidRow is returned for an import with rows that cannot be written:
// malformed, naming a user or product the shop does not have, or carrying an
// id the shop (or the import) already has (lesson 14).
var ErrInvalidRow = errors.New("invalid row")

// BadRow is one row an import refused: where it is in the input, and why.
type BadRow struct {
	Row    int    `json:"row"` // from 1: the order's place in the import, or the line of a file
	Reason string `json:"reason"`
}

// RowError is an import refused because of some of its rows. It wraps
// ErrInvalidRow. Its message names the first rows; Rows holds them all.
type RowError struct {
	Rows []BadRow
}

// maxRowsSaid is how many bad rows a RowError's message names.
const maxRowsSaid = 5

func (e *RowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad row(s)", len(e.Rows))
	for i, row := range e.Rows {
		if i == maxRowsSaid {
			fmt.Fprintf(&b, "; and %d more", len(e.Rows)-i)
			break
		}
		fmt.Fprintf(&b, "; row %d: %s", row.Row, row.Reason)
	}
	return b.String()
}

func (e *RowError) Unwrap() error { return ErrInvalidRow }

// Order statuses an import accepts.
var orderStatuses = []string{"pending", "shipped", "delivered", "cancelled"}

// CheckImportedOrder returns nil for an order an import may write, and an
// error saying what is wrong with it otherwise: an id or user id below 1, a
// status the shop does not use, no time of placing or one outside the years
// 1 to 9999 (beyond them pgx's encoding of a time wraps round, to another
// time the database accepts), or an item with a line
// number below 1 or used twice, a product id below 1, a quantity below 1 or
// a negative price. Whether the user and products exist is the database's to
// say.
func CheckImportedOrder(o Order) error {
	switch {
	case o.ID < 1:
		return fmt.Errorf("order id %d: want 1 or more", o.ID)
	case o.UserID < 1:
		return fmt.Errorf("order %d: user id %d: want 1 or more", o.ID, o.UserID)
	case !slices.Contains(orderStatuses, o.Status):
		return fmt.Errorf("order %d: status %s: want one of %s", o.ID, Quote(o.Status), strings.Join(orderStatuses, ", "))
	case o.CreatedAt.IsZero():
		return fmt.Errorf("order %d: no time of placing", o.ID)
	case o.CreatedAt.Year() < 1 || o.CreatedAt.Year() > 9999:
		return fmt.Errorf("order %d: placed in year %d: want 1 to 9999", o.ID, o.CreatedAt.Year())
	}
	lines := make(map[int32]bool, len(o.Items))
	for _, item := range o.Items {
		switch {
		case item.LineNo < 1 || lines[item.LineNo]:
			return fmt.Errorf("order %d: line number %d: want 1 or more, once each", o.ID, item.LineNo)
		case item.Product.ID < 1:
			return fmt.Errorf("order %d line %d: product id %d: want 1 or more", o.ID, item.LineNo, item.Product.ID)
		case item.Quantity < 1:
			return fmt.Errorf("order %d line %d: quantity %d: want 1 or more", o.ID, item.LineNo, item.Quantity)
		case item.PriceCents < 0:
			return fmt.Errorf("order %d line %d: price %d cents: want 0 or more", o.ID, item.LineNo, item.PriceCents)
		}
		lines[item.LineNo] = true
	}
	return nil
}
