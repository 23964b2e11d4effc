// Package streaming is lesson 4's exercise: yours to change.
//
// ExportOrderItemsCSV below works through the naive version, which holds every
// order item in memory before writing the first line. Make it stream, so that
// memory does not grow with the table, then check:
//
//	go test -tags exercise -run Exercise04 ./bench/streaming
//
// The check compares your output with the naive one byte for byte (flush
// what you write), and measures the live heap when your first line is
// written and every 256 KiB after it.
// One answer is in
// works-vs-scales/scalable/streaming.
package streaming

import (
	"context"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/streaming"
)

// ExportOrderItemsCSV writes every order item to w as CSV, by order and line:
// a header, then order_id, line_no, product_id, quantity and price_cents.
func ExportOrderItemsCSV(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	return naive.ExportOrderItemsCSV(ctx, db, w) // replace me
}
