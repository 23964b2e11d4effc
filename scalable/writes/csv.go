package writes

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// CSVHeader is the first line of a file of orders: each line after it is an
// order, its time of placing in RFC 3339.
const CSVHeader = "id,user_id,status,created_at"

// ImportCSV imports a file of orders, with [CSVHeader] as its first line, and
// returns how many it imported, all or none: it reads and checks the whole
// file first, then COPYs it, one statement, so one round trip and one commit.
//
// A malformed line refuses the file with a [shop.RowError] naming every bad
// line; so does a line naming a user the shop does not have or an id it has
// already, found by one more query once the COPY failed. Either way nothing
// is written: fix the file and import it again.
func ImportCSV(ctx context.Context, db *pgxpool.Pool, file io.Reader) (int64, error) {
	orders, lines, err := readCSV(file)
	if err != nil {
		return 0, fmt.Errorf("import orders, none written: %w", err)
	}
	if len(orders) == 0 {
		return 0, nil
	}
	imported, err := db.CopyFrom(ctx, pgx.Identifier{"orders"}, orderColumns, pgx.CopyFromRows(orderRows(orders)))
	if err == nil {
		return imported, nil
	}
	err = refused(ctx, db, orders, err)
	if rowErr := (*shop.RowError)(nil); errors.As(err, &rowErr) {
		for i := range rowErr.Rows {
			rowErr.Rows[i].Row = lines[rowErr.Rows[i].Row-1]
		}
	}
	return 0, err
}

// readCSV returns the orders of a file and the line each is on, or a
// [shop.RowError] naming every bad line.
func readCSV(file io.Reader) ([]shop.Order, []int, error) {
	r := csv.NewReader(file)
	r.FieldsPerRecord = -1 // checked by parseOrder, to say which line
	var orders []shop.Order
	var lines []int
	var bad []shop.BadRow
	seen := make(map[int64]int)
	header := true // the first line is the header, wherever the file's blank lines put it
	for {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var parseErr *csv.ParseError
		if errors.As(err, &parseErr) {
			header = false
			bad = append(bad, shop.BadRow{Row: parseErr.StartLine, Reason: err.Error()})
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read the file: %w", err)
		}
		line, _ := r.FieldPos(0)
		if header {
			header = false
			if !isHeader(record) {
				bad = append(bad, shop.BadRow{Row: line, Reason: fmt.Sprintf("header %s: want %s", shop.Quote(fmt.Sprint(record)), CSVHeader)})
			}
			continue
		}
		o, err := parseOrder(record)
		if err != nil {
			bad = append(bad, shop.BadRow{Row: line, Reason: err.Error()})
			continue
		}
		if first, ok := seen[o.ID]; ok {
			bad = append(bad, shop.BadRow{Row: line, Reason: fmt.Sprintf("order id %d: given before, on line %d", o.ID, first)})
			continue
		}
		seen[o.ID] = line
		orders = append(orders, o)
		lines = append(lines, line)
	}
	if len(bad) > 0 {
		return nil, nil, &shop.RowError{Rows: bad}
	}
	return orders, lines, nil
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
