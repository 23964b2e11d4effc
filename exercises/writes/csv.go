// Package writes is lesson 14's exercise: yours to change.
//
// ImportCSV below imports a file of orders a line at a time, an INSERT and a
// commit a line: 50,000 lines are 50,000 round trips, and a malformed line
// stops it half way, the lines before it imported and the rest not. Make it
// land 50,000 lines in at most 3 round trips, and, all or nothing, refuse a
// file with a malformed line with a shop.RowError naming the line, writing
// none of it, then check:
//
//	go test -tags exercise -run '^TestExercise14$' ./bench/writes
//
// One answer is in works-vs-scales/scalable/writes.
package writes

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// CSVHeader is the first line of a file of orders: each line after it is an
// order, its time of placing in RFC 3339.
const CSVHeader = "id,user_id,status,created_at"

// ImportCSV imports a file of orders, with [CSVHeader] as its first line, and
// returns how many it imported: it reads a line, inserts it, and reads the
// next, each insert committed on its own.
//
// A malformed line stops the import with a [shop.RowError] naming the line;
// the lines before it stay imported.
func ImportCSV(ctx context.Context, db *pgxpool.Pool, file io.Reader) (int64, error) {
	r := csv.NewReader(file)
	r.FieldsPerRecord = -1 // checked below, to say which line
	r.ReuseRecord = true
	var imported int64
	header := true // the first line is the header, wherever the file's blank lines put it
	for {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) {
			return imported, fmt.Errorf("import orders: %w", badRow(parseErr.StartLine, err))
		}
		if err != nil {
			return imported, fmt.Errorf("import orders, %d imported: read the file: %w", imported, err)
		}
		line, _ := r.FieldPos(0)
		if header {
			header = false
			if !isHeader(record) {
				return imported, fmt.Errorf("import orders: %w", badRow(line, fmt.Errorf("header %s: want %s", shop.Quote(fmt.Sprint(record)), CSVHeader)))
			}
			continue
		}
		o, err := parseOrder(record)
		if err != nil {
			return imported, fmt.Errorf("import orders: %w", badRow(line, err))
		}
		const insertOrder = `INSERT INTO orders (id, user_id, status, created_at) VALUES ($1, $2, $3, $4)`
		if _, err := db.Exec(ctx, insertOrder, o.ID, o.UserID, o.Status, o.CreatedAt); err != nil {
			return imported, fmt.Errorf("import orders: %w", rowError(line, err))
		}
		imported++
	}
	return imported, nil
}

// isHeader reports whether record is [CSVHeader].
func isHeader(record []string) bool {
	return len(record) == 4 && record[0] == "id" && record[1] == "user_id" && record[2] == "status" && record[3] == "created_at"
}

// parseOrder returns the order a line of a file of orders holds.
func parseOrder(record []string) (shop.Order, error) {
	if len(record) != 4 {
		return shop.Order{}, fmt.Errorf("%d fields: want 4 (%s)", len(record), CSVHeader)
	}
	id, err := strconv.ParseInt(record[0], 10, 64)
	if err != nil {
		return shop.Order{}, fmt.Errorf("id %s: not a number", shop.Quote(record[0]))
	}
	userID, err := strconv.ParseInt(record[1], 10, 64)
	if err != nil {
		return shop.Order{}, fmt.Errorf("user_id %s: not a number", shop.Quote(record[1]))
	}
	createdAt, err := time.Parse(time.RFC3339, record[3])
	if err != nil {
		return shop.Order{}, fmt.Errorf("created_at %s: not an RFC 3339 time", shop.Quote(record[3]))
	}
	o := shop.Order{ID: id, UserID: userID, Status: record[2], CreatedAt: createdAt}
	return o, shop.CheckImportedOrder(o)
}

// rowError returns err as a [shop.RowError] naming row if the database
// refused the row for its content (SQLSTATE class 23, integrity constraint
// violation: a duplicate id, an unknown user or product), err otherwise.
func rowError(row int, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "23" {
		return badRow(row, fmt.Errorf("%s: %s", pgErr.Message, pgErr.Detail))
	}
	return err
}

func badRow(row int, err error) error {
	return &shop.RowError{Rows: []shop.BadRow{{Row: row, Reason: err.Error()}}}
}
