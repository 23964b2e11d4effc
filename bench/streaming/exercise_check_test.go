package streaming

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/streaming"
	scalable "works-vs-scales/scalable/streaming"
	"works-vs-scales/shop"
)

// Lesson 4's exercise, in exercises/streaming. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise04, is in exercise_test.go, behind the exercise tag.

// checkExercise04 says what is still wrong with an answer to lesson 4's
// exercise, or nil when it is done: the naive bytes, with less than 2 MiB more
// live heap than at the start when the first bytes leave.
func checkExercise04(t testing.TB, db *pgxpool.Pool, export exportFunc) error {
	var want bytes.Buffer
	if err := naive.ExportOrderItemsCSV(context.Background(), db, &want); err != nil {
		return fmt.Errorf("the export to compare with: %w", err)
	}
	var got bytes.Buffer
	held, err := heapAtFirstWrite(func(w io.Writer) error {
		return export(context.Background(), db, io.MultiWriter(w, &got))
	})
	if err != nil {
		return fmt.Errorf("your ExportOrderItemsCSV failed: %w", err)
	}
	if err := compareExports(want.Bytes(), got.Bytes()); err != nil {
		return err
	}
	const budget = 2 << 20
	if held > budget {
		return fmt.Errorf("right bytes, but %.1f MiB more live heap at the first write: the file was held in memory before its first byte left; "+
			"stream the rows, writing each as it is read, to stay under %d MiB",
			float64(held)/(1<<20), budget>>20)
	}
	t.Logf("%d bytes, the same as the naive export; live heap at the first write: %.1f MiB more than at the start (budget %d MiB)",
		got.Len(), float64(held)/(1<<20), budget>>20)
	return nil
}

// compareExports says how the export got differs from want, in lesson 4's
// words, or returns nil when they are the same bytes.
func compareExports(want, got []byte) error {
	if bytes.Equal(want, got) {
		return nil
	}
	if bytes.HasPrefix(want, got) {
		return fmt.Errorf("your export stops after %d of %d bytes, at %q: the last lines stayed in the csv.Writer's buffer; call Flush at the end, then check Error",
			len(got), len(want), got[max(0, len(got)-40):])
	}
	wantLines, gotLines := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	line := 0
	for line < min(len(wantLines), len(gotLines)) && bytes.Equal(wantLines[line], gotLines[line]) {
		line++
	}
	var wantLine, gotLine []byte
	if line < len(wantLines) {
		wantLine = wantLines[line]
	}
	if line < len(gotLines) {
		gotLine = gotLines[line]
	}
	return fmt.Errorf("your export differs from the naive one (%d bytes, want %d) from line %d:\n got %q\nwant %q", len(got), len(want), line+1, gotLine, wantLine)
}

func TestExercise04CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise04(t, pgtest.Shop(t, shop.Small), naive.ExportOrderItemsCSV)
	require.ErrorContains(t, err, "live heap")
	t.Log(err)
}

func TestExercise04CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		export exportFunc
		want   string
	}{
		{"rows streamed into a buffer", exportThroughBuffer, "the file was held in memory before its first byte left"},
		{"no Flush", exportWithoutFlush, "call Flush at the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise04(t, pgtest.Shop(t, shop.Small), tc.export)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise04CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise04(t, pgtest.Shop(t, shop.Small), scalable.ExportOrderItemsCSV))
}

// writeOrderItemsCSV writes the order items to out as it reads them, without
// flushing it.
func writeOrderItemsCSV(ctx context.Context, db *pgxpool.Pool, out *csv.Writer) error {
	const allItemsQuery = `SELECT order_id, line_no, product_id, quantity, price_cents
		FROM order_items ORDER BY order_id, line_no`
	rows, err := db.Query(ctx, allItemsQuery)
	if err != nil {
		return err
	}
	defer rows.Close()
	out.Write([]string{"order_id", "line_no", "product_id", "quantity", "price_cents"})
	var orderID, productID, priceCents int64
	var lineNo, quantity int32
	for rows.Next() {
		if err := rows.Scan(&orderID, &lineNo, &productID, &quantity, &priceCents); err != nil {
			return err
		}
		out.Write([]string{strconv.FormatInt(orderID, 10), strconv.Itoa(int(lineNo)), strconv.FormatInt(productID, 10),
			strconv.Itoa(int(quantity)), strconv.FormatInt(priceCents, 10)})
	}
	return rows.Err()
}

// exportThroughBuffer is a wrong answer to exercise 4: it reads the rows one
// at a time, but writes them into a buffer, and the buffer to w at the end:
// the whole file is in memory before its first byte leaves.
func exportThroughBuffer(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	var file bytes.Buffer
	out := csv.NewWriter(&file)
	if err := writeOrderItemsCSV(ctx, db, out); err != nil {
		return err
	}
	out.Flush()
	if err := out.Error(); err != nil {
		return err
	}
	_, err := file.WriteTo(w)
	return err
}

// exportWithoutFlush is a wrong answer to exercise 4: it streams, but never
// flushes the csv.Writer, whose buffer keeps the last lines.
func exportWithoutFlush(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	return writeOrderItemsCSV(ctx, db, csv.NewWriter(w))
}
