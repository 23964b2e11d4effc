package writes

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/writes"
	scalable "works-vs-scales/scalable/writes"
	"works-vs-scales/shop"
)

// Lesson 14's exercise, in exercises/writes: a file of orders imported in at
// most 3 round trips, all or nothing. Its check is here, with the proof that it
// fails on the starting point and on the wrong answer people write first, and
// passes on the answer; the trainee's run of it, TestExercise14, is in
// exercise_test.go, behind the exercise tag.

type importCSVFunc func(ctx context.Context, db *pgxpool.Pool, file io.Reader) (int64, error)

const (
	exercise14Lines   = 50_000
	exercise14Trips   = 3
	exercise14BadLine = 31_337
)

// ordersCSV returns a file of n orders with ids from firstID up, its header
// on line 1; if badLine is above 1, that line's user id is not a number.
func ordersCSV(n int, firstID int64, badLine int) string {
	var b strings.Builder
	b.WriteString(scalable.CSVHeader + "\n")
	placed := time.Date(2026, time.March, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		user := strconv.Itoa(1 + i%writesScale.Users())
		if i+2 == badLine {
			user += "x"
		}
		fmt.Fprintf(&b, "%d,%s,pending,%s\n", firstID+int64(i), user, placed.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
	}
	return b.String()
}

// checkExercise14 says what is still wrong with an answer to lesson 14's
// exercise, or nil when it is done: files of 1,000 and 50,000 lines land
// whole in at most 3 round trips each; a file of 50,000 lines with line
// 31,337 malformed is refused with a shop.RowError naming that line, and
// none of it lands.
func checkExercise14(t *testing.T, importCSV importCSVFunc) error {
	db := pgtest.ShopClone(t, writesScale)
	firstID := int64(importedIDs)
	for _, n := range []int{1_000, exercise14Lines} {
		ctx, counts := pgtest.CountQueries(context.Background())
		imported, err := importCSV(ctx, db, strings.NewReader(ordersCSV(n, firstID, 0)))
		if err != nil {
			return fmt.Errorf("importing %d good lines: %w", n, err)
		}
		landed, err := ordersFrom(db, firstID, n)
		if err != nil {
			return err
		}
		if imported != int64(n) || landed != n {
			return fmt.Errorf("importing %d good lines: %d imported, %d landed: want %d", n, imported, landed, n)
		}
		if trips := counts.RoundTrips(); trips > exercise14Trips {
			return fmt.Errorf("importing %d lines took %d round trips: want at most %d", n, trips, exercise14Trips)
		}
		firstID += int64(n)
	}

	file := ordersCSV(exercise14Lines, firstID, exercise14BadLine)
	imported, err := importCSV(context.Background(), db, strings.NewReader(file))
	landed, countErr := ordersFrom(db, firstID, exercise14Lines)
	if countErr != nil {
		return countErr
	}
	var rowErr *shop.RowError
	if !errors.As(err, &rowErr) || !errors.Is(err, shop.ErrInvalidRow) {
		return fmt.Errorf("a file with line %d malformed: got %v, %d imported: want a *shop.RowError", exercise14BadLine, err, imported)
	}
	named := false
	for _, row := range rowErr.Rows {
		named = named || row.Row == exercise14BadLine
	}
	if !named {
		return fmt.Errorf("a file with line %d malformed: the error does not name the line: %v", exercise14BadLine, err)
	}
	if landed != 0 || imported != 0 {
		return fmt.Errorf("a file with line %d malformed: %d lines imported, %d landed: want none of the file, all or nothing", exercise14BadLine, imported, landed)
	}
	return nil
}

// ordersFrom counts the orders with ids from firstID, n of them.
func ordersFrom(db *pgxpool.Pool, firstID int64, n int) (int, error) {
	var landed int
	const count = `SELECT count(*) FROM orders WHERE id >= $1 AND id < $2`
	if err := db.QueryRow(context.Background(), count, firstID, firstID+int64(n)).Scan(&landed); err != nil {
		return 0, fmt.Errorf("count the orders imported: %w", err)
	}
	return landed, nil
}

func TestExercise14CheckFailsOnTheStart(t *testing.T) {
	require.ErrorContains(t, checkExercise14(t, naive.ImportCSV), "importing 1000 lines took 1000 round trips")
}

func TestExercise14CheckFailsOnABatchThatDropsTheBadLine(t *testing.T) {
	require.ErrorContains(t, checkExercise14(t, dropBadLines), fmt.Sprintf("a file with line %d malformed: got <nil>", exercise14BadLine))
}

func TestExercise14CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise14(t, scalable.ImportCSV))
}

// dropBadLines is the fast answer that loses a line: it COPYs every line
// that parses and skips, without a word, the ones that do not.
func dropBadLines(ctx context.Context, db *pgxpool.Pool, file io.Reader) (int64, error) {
	records, err := csv.NewReader(file).ReadAll()
	if err != nil {
		return 0, err
	}
	var rows [][]any
	for _, record := range records[1:] {
		id, err1 := strconv.ParseInt(record[0], 10, 64)
		userID, err2 := strconv.ParseInt(record[1], 10, 64)
		createdAt, err3 := time.Parse(time.RFC3339, record[3])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		rows = append(rows, []any{id, userID, record[2], createdAt})
	}
	return db.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"id", "user_id", "status", "created_at"}, pgx.CopyFromRows(rows))
}

func TestImportCSVRefusesHostileInput(t *testing.T) {
	impls := map[string]importCSVFunc{"naive": naive.ImportCSV, "scalable": scalable.ImportCSV}
	files := map[string]struct {
		file    string
		badLine int
	}{
		"no header":                     {"10000001,1,pending,2026-03-01T09:00:00Z\n", 1},
		"no header, after a blank line": {"\n10000001,1,pending,2026-03-01T09:00:00Z\n", 2},
		"a bare quote on line 1":        {"id,user\"_id,status,created_at\n10000001,1,pending,2026-03-01T09:00:00Z\n", 1},
		"a quote never closed":          {scalable.CSVHeader + "\n\"10000001,1,pending,2026-03-01T09:00:00Z\n", 2},
		"a field short":                 {scalable.CSVHeader + "\n10000001,1,pending\n", 2},
		"a bare quote":                  {scalable.CSVHeader + "\n10000001,1,pen\"ding,2026-03-01T09:00:00Z\n", 2},
		"negative id":                   {scalable.CSVHeader + "\n-1,1,pending,2026-03-01T09:00:00Z\n", 2},
		"unknown status":                {scalable.CSVHeader + "\n10000001,1,paid,2026-03-01T09:00:00Z\n", 2},
		"not a time":                    {scalable.CSVHeader + "\n10000001,1,pending,yesterday\n", 2},
		"unknown user":                  {scalable.CSVHeader + "\n10000001,4611686018427387904,pending,2026-03-01T09:00:00Z\n", 2},
		"an id it has":                  {scalable.CSVHeader + "\n1,1,pending,2026-03-01T09:00:00Z\n", 2},
		"an id twice":                   {scalable.CSVHeader + "\n10000001,1,pending,2026-03-01T09:00:00Z\n10000001,1,pending,2026-03-01T09:00:00Z\n", 3},
		"a huge id field":               {scalable.CSVHeader + "\n" + strings.Repeat("9", 1<<20) + ",1,pending,2026-03-01T09:00:00Z\n", 2},
	}
	for implName, importCSV := range impls {
		t.Run(benchkit.Name("impl", implName), func(t *testing.T) {
			db := pgtest.ShopClone(t, writesScale)
			ctx := context.Background()
			imported, err := importCSV(ctx, db, strings.NewReader(""))
			require.NoError(t, err, "an empty file")
			require.Zero(t, imported)
			for what, f := range files {
				_, err := importCSV(ctx, db, strings.NewReader(f.file))
				var rowErr *shop.RowError
				require.ErrorAs(t, err, &rowErr, what)
				require.Equal(t, f.badLine, rowErr.Rows[0].Row, "%s: %v", what, err)
				require.Less(t, len(err.Error()), 500, "%s: the error quotes what it must, not the whole line", what)

				landed, err := ordersFrom(db, importedIDs, 10)
				require.NoError(t, err)
				if implName == "naive" {
					require.Equal(t, max(f.badLine-2, 0), landed, "%s: naive lands the lines before the bad one", what)
				} else {
					require.Zero(t, landed, "%s: all or nothing", what)
				}
				// Each file starts from the same shop, whatever ran before it.
				_, err = db.Exec(ctx, "DELETE FROM orders WHERE id >= $1", importedIDs)
				require.NoError(t, err)
			}
		})
	}
}

func TestImportCSVAgree(t *testing.T) {
	const n = 100
	file := ordersCSV(n, importedIDs, 0)
	var imported [][]shop.Order
	for _, importCSV := range []importCSVFunc{naive.ImportCSV, scalable.ImportCSV} {
		db := pgtest.ShopClone(t, writesScale)
		count, err := importCSV(context.Background(), db, strings.NewReader(file))
		require.NoError(t, err)
		require.Equal(t, int64(n), count)
		imported = append(imported, importedRows(t, db, importedIDs, importedIDs+n-1))
	}
	require.Len(t, imported[0], n)
	require.Equal(t, imported[0], imported[1])
}
