package streaming

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
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
// live heap than at the start at any moment while the bytes leave (measured at
// the first write and every heapEvery bytes after it).
func checkExercise04(t testing.TB, db *pgxpool.Pool, export exportFunc) error {
	var want bytes.Buffer
	if err := naive.ExportOrderItemsCSV(context.Background(), db, &want); err != nil {
		return fmt.Errorf("the export to compare with: %w", err)
	}
	held, at, written, same, err := heapWhileWriting(want.Bytes(), func(w io.Writer) error {
		return export(context.Background(), db, w)
	})
	if err != nil {
		return fmt.Errorf("your ExportOrderItemsCSV failed: %w", err)
	}
	if !same {
		// Again, into memory this time, to show where the bytes differ.
		var got bytes.Buffer
		if err := export(context.Background(), db, &got); err != nil {
			return fmt.Errorf("your ExportOrderItemsCSV failed: %w", err)
		}
		if err := compareExports(want.Bytes(), got.Bytes()); err != nil {
			return err
		}
		return fmt.Errorf("your export wrote different bytes on two runs (%d bytes, then %d)", written, got.Len())
	}
	const budget = 2 << 20
	if held > budget {
		when := fmt.Sprintf("after %d of its %d bytes had left", at, written)
		if at == 0 {
			when = "when its first byte left"
		}
		return fmt.Errorf("right bytes, but your export held %.1f MiB more live heap than at its start %s: rows were kept in memory while the file was written; "+
			"write each row as it is read, and keep nothing after, to stay under %d MiB (see \"The scales version\")",
			float64(held)/(1<<20), when, budget>>20)
	}
	t.Logf("%d bytes, the same as the naive export; live heap while writing: at most %.1f MiB more than at the start (budget %d MiB)",
		written, float64(held)/(1<<20), budget>>20)
	return nil
}

// heapEvery is how often, in bytes written, heapWhileWriting measures.
const heapEvery = 256 << 10

// heapWhileWriting runs export and returns the most live heap it held above
// the live heap before it started, measured after a collection at its first
// write and every heapEvery bytes after, and how many bytes had been written
// when it held the most; and how many bytes it wrote, and whether they are
// want's. It keeps none of them: a copy would be live heap too.
func heapWhileWriting(want []byte, export func(io.Writer) error) (held, at, written int64, same bool, err error) {
	base := liveHeap()
	probe := &heapProbe{want: want, same: true}
	if err := export(probe); err != nil {
		return 0, 0, 0, false, err
	}
	if !probe.sampled {
		return 0, 0, 0, false, fmt.Errorf("the export wrote nothing")
	}
	same = probe.same && probe.written == int64(len(want))
	return int64(probe.peak) - int64(min(base, probe.peak)), probe.peakAt, probe.written, same, nil
}

// heapProbe measures the live heap as heapWhileWriting says, and compares
// what is written to it with want.
type heapProbe struct {
	want          []byte
	same          bool
	written, next int64
	sampled       bool
	peak          uint64
	peakAt        int64
}

func (p *heapProbe) Write(b []byte) (int, error) {
	if !p.sampled || p.written >= p.next {
		if heap := liveHeap(); heap > p.peak || !p.sampled {
			p.peak, p.peakAt = heap, p.written
		}
		p.sampled, p.next = true, p.written+heapEvery
	}
	end := p.written + int64(len(b))
	p.same = p.same && end <= int64(len(p.want)) && bytes.Equal(b, p.want[p.written:end])
	p.written = end
	return len(b), nil
}

// compareExports says how the export got differs from want, in lesson 4's
// words, or returns nil when they are the same bytes.
func compareExports(want, got []byte) error {
	if bytes.Equal(want, got) {
		return nil
	}
	if bytes.HasPrefix(want, got) {
		return fmt.Errorf("your export stops after %d of %d bytes, at %q: its last %d bytes never reached the writer; a buffered writer (csv.Writer, bufio.Writer) keeps them until it is flushed, at the end, and then says if it failed (csv.Writer's Error)",
			len(got), len(want), got[max(0, len(got)-40):], len(want)-len(got))
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
		{"rows streamed into a buffer", exportThroughBuffer, "more live heap than at its start when its first byte left"},
		{"no Flush", exportWithoutFlush, "its last 2690 bytes never reached the writer"},
		{"the header first, then every row held", exportHeaderFirst, "bytes had left: rows were kept in memory while the file was written"},
		{"a bufio.Writer never flushed", exportThroughUnflushedBufio, "bytes never reached the writer; a buffered writer"},
		{"COPY into a buffer", exportCopyThroughBuffer, "more live heap than at its start when its first byte left"},
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

// The wrong answers below are written from the lesson's "Why it breaks" as a
// trainee writes them: each writes early, or stops collecting somewhere, and
// still holds the rows, or loses the end.

// exportHeaderFirst is a wrong answer to exercise 4: the header leaves at
// once, so the client sees a byte early; then every row is collected, as the
// naive export does, and written.
func exportHeaderFirst(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	if _, err := io.WriteString(w, "order_id,line_no,product_id,quantity,price_cents\n"); err != nil {
		return err
	}
	const allItemsQuery = `SELECT order_id, line_no, product_id, quantity, price_cents
		FROM order_items ORDER BY order_id, line_no`
	rows, err := db.Query(ctx, allItemsQuery)
	if err != nil {
		return err
	}
	type item struct {
		OrderID    int64
		LineNo     int32
		ProductID  int64
		Quantity   int32
		PriceCents int64
	}
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[item])
	if err != nil {
		return err
	}
	out := csv.NewWriter(w)
	for _, it := range items {
		out.Write([]string{strconv.FormatInt(it.OrderID, 10), strconv.Itoa(int(it.LineNo)), strconv.FormatInt(it.ProductID, 10),
			strconv.Itoa(int(it.Quantity)), strconv.FormatInt(it.PriceCents, 10)})
	}
	out.Flush()
	return out.Error()
}

// exportThroughUnflushedBufio is a wrong answer to exercise 4: it streams,
// each line printed with fmt.Fprintf to a bufio.Writer, for fewer writes,
// and never flushes it: the end of the file stays in its buffer.
func exportThroughUnflushedBufio(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	const allItemsQuery = `SELECT order_id, line_no, product_id, quantity, price_cents
		FROM order_items ORDER BY order_id, line_no`
	rows, err := db.Query(ctx, allItemsQuery)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := bufio.NewWriter(w)
	fmt.Fprintln(out, "order_id,line_no,product_id,quantity,price_cents")
	var orderID, productID, priceCents int64
	var lineNo, quantity int32
	for rows.Next() {
		if err := rows.Scan(&orderID, &lineNo, &productID, &quantity, &priceCents); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "%d,%d,%d,%d,%d\n", orderID, lineNo, productID, quantity, priceCents); err != nil {
			return err
		}
	}
	return rows.Err()
}

// exportCopyThroughBuffer is a wrong answer to exercise 4: PostgreSQL's COPY
// makes the CSV, which is fast, but into a buffer, which is written to w at
// the end: the whole file is in memory before its first byte leaves.
func exportCopyThroughBuffer(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var file bytes.Buffer
	const copyItems = `COPY (SELECT order_id, line_no, product_id, quantity, price_cents
		FROM order_items ORDER BY order_id, line_no) TO STDOUT WITH (FORMAT csv, HEADER)`
	if _, err := conn.Conn().PgConn().CopyTo(ctx, &file, copyItems); err != nil {
		return err
	}
	_, err = file.WriteTo(w)
	return err
}
