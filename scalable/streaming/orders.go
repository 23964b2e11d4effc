// Package streaming writes every order as CSV for finance with memory that does
// not grow with the table: each row is written as it arrives from the
// database. ExportOrdersCSVCopy goes further and lets PostgreSQL write the CSV
// itself with COPY.
//
// Compare with works-vs-scales/naive/streaming, which collects every row first.
package streaming

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ExportOrdersCSV writes every order to w as CSV, in id order: a header, then
// id, created_at (UTC, to the microsecond), user_id, email and status.
//
// It streams: each row is scanned into the same variables and written before
// the next is read, so memory stays the size of one row and the writer's
// buffer, whatever the size of the table.
func ExportOrdersCSV(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	// Reads orders and users in full; the join is a hash join, sorted by id.
	const allOrdersQuery = `SELECT o.id, o.created_at, o.user_id, u.email, o.status
		FROM orders o JOIN users u ON u.id = o.user_id
		ORDER BY o.id`
	// When the writer fails, cancel stops the query: rows.Close would
	// otherwise read, and throw away, the rest of the result first.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := db.Query(ctx, allOrdersQuery)
	if err != nil {
		return fmt.Errorf("export orders: %w", err)
	}
	defer func() {
		cancel() // first: only then does Close not drain
		rows.Close()
	}()

	out := csv.NewWriter(w)
	out.Write([]string{"id", "created_at", "user_id", "email", "status"})
	var (
		id, userID    int64
		createdAt     time.Time
		email, status string
		line          = make([]string, 5)
	)
	for rows.Next() {
		if err := rows.Scan(&id, &createdAt, &userID, &email, &status); err != nil {
			return fmt.Errorf("export orders: %w", err)
		}
		line[0] = strconv.FormatInt(id, 10)
		line[1] = createdAt.UTC().Format("2006-01-02T15:04:05.000000Z")
		line[2] = strconv.FormatInt(userID, 10)
		line[3], line[4] = email, status
		if err := out.Write(line); err != nil {
			return fmt.Errorf("export orders: write order %d: %w", id, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export orders: %w", err)
	}
	out.Flush()
	if err := out.Error(); err != nil {
		return fmt.Errorf("export orders: write: %w", err)
	}
	return nil
}

// ExportOrdersCSVCopy writes the records ExportOrdersCSV writes, but
// PostgreSQL formats the CSV and streams it with COPY: no rows to scan, no
// values to format in Go, almost nothing allocated. The formatting moves to the
// database server (here to_char on every timestamp), so whether it is faster
// depends on what is formatted: measure it.
//
// A CSV reader reads the same values from both; the bytes differ where the two
// writers quote differently: PostgreSQL quotes an empty string (to tell it
// from NULL) and leaves a leading space bare, encoding/csv does the opposite.
func ExportOrdersCSVCopy(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	// The to_char format matches Go's "2006-01-02T15:04:05.000000Z" in UTC.
	const copyOrdersCSV = `COPY (
			SELECT o.id, to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
				o.user_id, u.email, o.status
			FROM orders o JOIN users u ON u.id = o.user_id
			ORDER BY o.id
		) TO STDOUT WITH (FORMAT csv, HEADER)`
	conn, err := db.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("export orders: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Conn().PgConn().CopyTo(ctx, w, copyOrdersCSV); err != nil {
		return fmt.Errorf("export orders: copy: %w", err)
	}
	return nil
}
