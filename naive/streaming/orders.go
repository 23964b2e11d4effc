// Package streaming writes every order as CSV for finance, the way that works
// first: read all the rows into a slice, then write them. Memory grows with
// the table: a hundred thousand orders fit, ten million take the process down.
//
// Compare with works-vs-scales/scalable/streaming, which streams.
package streaming

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// exportedOrder is one line of the orders export.
type exportedOrder struct {
	ID        int64
	CreatedAt time.Time
	UserID    int64
	Email     string
	Status    string
}

// ExportOrdersCSV writes every order to w as CSV, in id order: a header, then
// id, created_at (UTC, to the microsecond), user_id, email and status.
//
// It holds every order in memory before writing the first line.
func ExportOrdersCSV(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	// Reads orders and users in full; the join is a hash join, sorted by id.
	const allOrdersQuery = `SELECT o.id, o.created_at, o.user_id, u.email, o.status
		FROM orders o JOIN users u ON u.id = o.user_id
		ORDER BY o.id`
	rows, err := db.Query(ctx, allOrdersQuery)
	if err != nil {
		return fmt.Errorf("export orders: %w", err)
	}
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (exportedOrder, error) {
		var o exportedOrder
		err := row.Scan(&o.ID, &o.CreatedAt, &o.UserID, &o.Email, &o.Status)
		return o, err
	})
	if err != nil {
		return fmt.Errorf("export orders: %w", err)
	}

	out := csv.NewWriter(w)
	out.Write([]string{"id", "created_at", "user_id", "email", "status"})
	for _, o := range orders {
		out.Write([]string{
			strconv.FormatInt(o.ID, 10),
			o.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
			strconv.FormatInt(o.UserID, 10),
			o.Email,
			o.Status,
		})
	}
	out.Flush()
	if err := out.Error(); err != nil {
		return fmt.Errorf("export orders: write: %w", err)
	}
	return nil
}
