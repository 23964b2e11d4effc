package streaming

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// exportedItem is one line of the order items export.
type exportedItem struct {
	OrderID, ProductID int64
	LineNo, Quantity   int32
	PriceCents         int64
}

// ExportOrderItemsCSV writes every order item to w as CSV, by order and line:
// a header, then order_id, line_no, product_id, quantity and price_cents.
//
// It holds every item in memory before writing the first line. (Lesson 4's
// exercise starts here.)
func ExportOrderItemsCSV(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	// Reads order_items in full, in order_items_pkey order.
	const allItemsQuery = `SELECT order_id, line_no, product_id, quantity, price_cents
		FROM order_items ORDER BY order_id, line_no`
	rows, err := db.Query(ctx, allItemsQuery)
	if err != nil {
		return fmt.Errorf("export order items: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (exportedItem, error) {
		var it exportedItem
		err := row.Scan(&it.OrderID, &it.LineNo, &it.ProductID, &it.Quantity, &it.PriceCents)
		return it, err
	})
	if err != nil {
		return fmt.Errorf("export order items: %w", err)
	}

	out := csv.NewWriter(w)
	out.Write([]string{"order_id", "line_no", "product_id", "quantity", "price_cents"})
	for _, it := range items {
		out.Write([]string{
			strconv.FormatInt(it.OrderID, 10),
			strconv.Itoa(int(it.LineNo)),
			strconv.FormatInt(it.ProductID, 10),
			strconv.Itoa(int(it.Quantity)),
			strconv.FormatInt(it.PriceCents, 10),
		})
	}
	out.Flush()
	if err := out.Error(); err != nil {
		return fmt.Errorf("export order items: write: %w", err)
	}
	return nil
}
