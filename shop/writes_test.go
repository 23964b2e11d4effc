package shop

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRowErrorNamesTheFirstRowsAndCountsTheRest(t *testing.T) {
	var err error = &RowError{Rows: []BadRow{{1, "a"}, {2, "b"}, {3, "c"}, {4, "d"}, {5, "e"}, {6, "f"}, {7, "g"}}}
	const want = "7 bad row(s); row 1: a; row 2: b; row 3: c; row 4: d; row 5: e; and 2 more"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, ErrInvalidRow) {
		t.Error("a RowError is an ErrInvalidRow")
	}
}

func TestCheckImportedOrder(t *testing.T) {
	good := func() Order {
		return Order{ID: 1, UserID: 1, Status: "pending", CreatedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			Items: []OrderItem{{LineNo: 1, Product: Product{ID: 1}, Quantity: 1, PriceCents: 0}}}
	}
	if err := CheckImportedOrder(good()); err != nil {
		t.Fatalf("a good order: %v", err)
	}
	bad := map[string]func(o *Order){
		"id":       func(o *Order) { o.ID = 0 },
		"user":     func(o *Order) { o.UserID = -1 },
		"status":   func(o *Order) { o.Status = strings.Repeat("x", 1<<20) },
		"time":     func(o *Order) { o.CreatedAt = time.Time{} },
		"far time": func(o *Order) { o.CreatedAt = time.Date(600_000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"BC":       func(o *Order) { o.CreatedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"line":     func(o *Order) { o.Items[0].LineNo = -1 },
		"twice":    func(o *Order) { o.Items = append(o.Items, o.Items[0]) },
		"product":  func(o *Order) { o.Items[0].Product.ID = 0 },
		"quantity": func(o *Order) { o.Items[0].Quantity = -1 },
		"price":    func(o *Order) { o.Items[0].PriceCents = -1 },
	}
	for what, spoil := range bad {
		o := good()
		spoil(&o)
		err := CheckImportedOrder(o)
		if err == nil {
			t.Errorf("%s: no error", what)
		} else if len(err.Error()) > 200 {
			t.Errorf("%s: a %d-byte error quotes too much", what, len(err.Error()))
		}
	}
}
