package streaming

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ExportOrderItemsCSV writes every order item to w as CSV, by order and line:
// a header, then order_id, line_no, product_id, quantity and price_cents.
//
// It streams each row as it arrives. (This is the reference answer to lesson
// 4's exercise.)
func ExportOrderItemsCSV(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	// Reads order_items in full, in order_items_pkey order.
	const allItemsQuery = `SELECT order_id, line_no, product_id, quantity, price_cents
		FROM order_items ORDER BY order_id, line_no`
	// When the writer fails, cancel stops the query: rows.Close would
	// otherwise read, and throw away, the rest of the result first.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := db.Query(ctx, allItemsQuery)
	if err != nil {
		return fmt.Errorf("export order items: %w", err)
	}
	defer func() {
		cancel() // first: only then does Close not drain
		rows.Close()
	}()

	out := csv.NewWriter(w)
	out.Write([]string{"order_id", "line_no", "product_id", "quantity", "price_cents"})
	var (
		orderID, productID, priceCents int64
		lineNo, quantity               int32
		line                           = make([]string, 5)
	)
	for rows.Next() {
		if err := rows.Scan(&orderID, &lineNo, &productID, &quantity, &priceCents); err != nil {
			return fmt.Errorf("export order items: %w", err)
		}
		line[0] = strconv.FormatInt(orderID, 10)
		line[1] = strconv.Itoa(int(lineNo))
		line[2] = strconv.FormatInt(productID, 10)
		line[3] = strconv.Itoa(int(quantity))
		line[4] = strconv.FormatInt(priceCents, 10)
		if err := out.Write(line); err != nil {
			return fmt.Errorf("export order items: write: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export order items: %w", err)
	}
	out.Flush()
	if err := out.Error(); err != nil {
		return fmt.Errorf("export order items: write: %w", err)
	}
	return nil
}
