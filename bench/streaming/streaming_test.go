package streaming

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/streaming"
	scalable "works-vs-scales/scalable/streaming"
	"works-vs-scales/shop"
)

// Lesson 4: load everything, then write; or stream.

type exportFunc func(context.Context, *pgxpool.Pool, io.Writer) error

var exportOrdersImpls = []struct {
	name   string
	export exportFunc
}{
	{"naive", naive.ExportOrdersCSV},
	{"stream", scalable.ExportOrdersCSV},
	{"copy", scalable.ExportOrdersCSVCopy},
}

// TestExportsAgree: the Go versions write the same bytes; COPY writes the
// same records (see TestCopyExportQuotesDifferently).
func TestExportsAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	outputs := exportAll(t, db)
	want := outputs["naive"]
	lines := bytes.Split(bytes.TrimSuffix(want, []byte("\n")), []byte("\n"))
	require.Len(t, lines, 1+shop.Small.Orders(), "a header and a line per order")
	require.Equal(t, "id,created_at,user_id,email,status", string(lines[0]))
	require.Regexp(t, `^1,2021-01-01T\d\d:\d\d:\d\d\.\d{6}Z,\d+,user\d+@example\.com,delivered$`, string(lines[1]))
	require.Equal(t, sha256.Sum256(want), sha256.Sum256(outputs["stream"]), "stream writes other bytes than naive")
	require.Equal(t, csvRecords(t, want), csvRecords(t, outputs["copy"]), "copy writes other records than naive")
}

// TestCopyExportQuotesDifferently: on values that need CSV's care, COPY and
// encoding/csv write the same records but not the same bytes. PostgreSQL
// quotes an empty string (to tell it from NULL) and leaves a leading space
// or a lone \. bare; encoding/csv does the opposite. Both are valid CSV.
func TestCopyExportQuotesDifferently(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	edgeEmails := []string{"", " leading@space", "\ttab@example.com", "trailing@space ", "a,b@example.com",
		`say"hi"@example.com`, "two\nlines@example.com", "cr\rlf@example.com", `\.`, "\u00a0nbsp@example.com", "ünïcödé@example.com"}
	rows, err := db.Query(ctx, "SELECT user_id FROM orders GROUP BY user_id ORDER BY min(id) LIMIT $1", len(edgeEmails))
	require.NoError(t, err)
	users, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Len(t, users, len(edgeEmails))
	for i, email := range edgeEmails {
		_, err := db.Exec(ctx, "UPDATE users SET email = $1 WHERE id = $2", email, users[i])
		require.NoError(t, err)
	}
	_, err = db.Exec(ctx, "UPDATE orders SET status = '' WHERE id = 1")
	require.NoError(t, err)

	outputs := exportAll(t, db)
	require.Equal(t, sha256.Sum256(outputs["naive"]), sha256.Sum256(outputs["stream"]), "the Go versions write the same bytes")
	want := csvRecords(t, outputs["naive"])
	require.Equal(t, want, csvRecords(t, outputs["copy"]), "COPY writes the same records")
	emails := make(map[string]string) // by user id
	for _, record := range want[1:] {
		emails[record[2]] = record[3]
	}
	for i, email := range edgeEmails {
		require.Equal(t, email, emails[strconv.FormatInt(users[i], 10)], "the export keeps email %q", email)
	}
	require.Equal(t, "", want[1][4], "and an empty status")
	assert.False(t, bytes.Equal(outputs["naive"], outputs["copy"]), "but not the same bytes")
	assert.True(t, bytes.Contains(outputs["copy"], []byte(`,"",`)), "COPY quotes an empty string")
	assert.True(t, bytes.Contains(outputs["naive"], []byte(",,")), "encoding/csv does not")
	assert.True(t, bytes.Contains(outputs["naive"], []byte(`," leading@space",`)), "encoding/csv quotes a leading space")
	assert.True(t, bytes.Contains(outputs["copy"], []byte(`, leading@space,`)), "COPY does not")
}

// exportAll runs each export of the orders on db and returns what each wrote.
func exportAll(t *testing.T, db *pgxpool.Pool) map[string][]byte {
	t.Helper()
	outputs := make(map[string][]byte)
	for _, impl := range exportOrdersImpls {
		var out bytes.Buffer
		require.NoError(t, impl.export(context.Background(), db, &out), impl.name)
		outputs[impl.name] = out.Bytes()
	}
	return outputs
}

// csvRecords parses a CSV export.
func csvRecords(t *testing.T, export []byte) [][]string {
	t.Helper()
	records, err := csv.NewReader(bytes.NewReader(export)).ReadAll()
	require.NoError(t, err)
	return records
}

// errClientGone is what a writer whose client went away returns.
var errClientGone = errors.New("injected: the client went away")

// failingWriter accepts its first n bytes, then fails every write.
type failingWriter struct{ n int }

func (w *failingWriter) Write(b []byte) (int, error) {
	if len(b) > w.n {
		written := w.n
		w.n = 0
		return written, errClientGone
	}
	w.n -= len(b)
	return len(b), nil
}

// TestFailedExportStopsItsQuery: when the client goes away after 64 KiB, the
// export returns its error without reading the rest of the result (the
// streaming version's query reports fewer rows than the table holds; COPY's
// bypasses the query tracer, so only its error and the pool are checked), and
// the pool serves the next query.
func TestFailedExportStopsItsQuery(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	for _, impl := range exportOrdersImpls {
		ctx, counts := pgtest.CountQueries(context.Background())
		err := impl.export(ctx, db, &failingWriter{n: 64 << 10})
		require.ErrorIs(t, err, errClientGone, impl.name)
		if impl.name == "stream" {
			assert.Less(t, counts.Rows(), int64(shop.Small.Orders()), "stream: rows read after the writer failed")
		}
		var orders int64
		require.NoError(t, db.QueryRow(context.Background(), "SELECT count(*) FROM orders").Scan(&orders), "%s: the pool after a failed export", impl.name)
		require.Equal(t, int64(shop.Small.Orders()), orders)
	}
}

// TestFailedItemsExportStopsItsQuery is TestFailedExportStopsItsQuery for the
// order items, the reference answer of lesson 4's exercise.
func TestFailedItemsExportStopsItsQuery(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	var items int64
	require.NoError(t, db.QueryRow(context.Background(), "SELECT count(*) FROM order_items").Scan(&items))
	ctx, counts := pgtest.CountQueries(context.Background())
	err := scalable.ExportOrderItemsCSV(ctx, db, &failingWriter{n: 64 << 10})
	require.ErrorIs(t, err, errClientGone)
	assert.Less(t, counts.Rows(), items, "rows read after the writer failed")
	require.NoError(t, db.QueryRow(context.Background(), "SELECT count(*) FROM order_items").Scan(&items), "the pool after a failed export")
}

// TestExportMemoryAtFirstWrite is the lesson as a fact: when the first line
// leaves, the naive export holds every order; the streaming one holds a row.
func TestExportMemoryAtFirstWrite(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	const mib = 1 << 20
	held, err := heapAtFirstWrite(func(w io.Writer) error { return naive.ExportOrdersCSV(context.Background(), db, w) })
	require.NoError(t, err)
	assert.Greater(t, held, int64(8*mib), "naive holds ~100 bytes per order (%d orders)", shop.Small.Orders())
	held, err = heapAtFirstWrite(func(w io.Writer) error { return scalable.ExportOrdersCSV(context.Background(), db, w) })
	require.NoError(t, err)
	assert.Less(t, held, int64(2*mib), "streaming holds a row and a buffer")
}

// heapAtFirstWrite runs export and returns how much more live heap there was,
// after a collection, when export first wrote than before it started.
func heapAtFirstWrite(export func(io.Writer) error) (int64, error) {
	liveHeap := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	probe := &firstWriteProbe{w: sha256.New(), measure: liveHeap}
	before := liveHeap()
	if err := export(probe); err != nil {
		return 0, err
	}
	if !probe.written {
		return 0, fmt.Errorf("the export wrote nothing")
	}
	return probe.heap - before, nil
}

// firstWriteProbe measures the heap the first time it is written to.
type firstWriteProbe struct {
	w       hash.Hash
	measure func() int64
	written bool
	heap    int64
}

func (p *firstWriteProbe) Write(b []byte) (int, error) {
	if !p.written {
		p.written, p.heap = true, p.measure()
	}
	return p.w.Write(b)
}

// TestLiveHeapCountsWhatIsHeldNotWhatWasAllocated: the benchmark's
// live-heap-bytes sees 16 MiB an export holds while it writes, and not the
// 64 MiB another allocates and drops as it goes.
func TestLiveHeapCountsWhatIsHeldNotWhatWasAllocated(t *testing.T) {
	const mib = 1 << 20
	var sink []byte
	holds, err := peakLiveHeap(func(w io.Writer) error {
		held := make([]byte, 16*mib)
		for i := 0; i < len(held); i += 4096 {
			held[i] = 1
		}
		for range 16 * mib / 4096 {
			if _, err := w.Write(held[:4096]); err != nil {
				return err
			}
		}
		runtime.KeepAlive(held)
		return nil
	})
	require.NoError(t, err)
	assert.Greater(t, holds, float64(15*mib), "16 MiB held (give or take what else was freed)")

	drops, err := peakLiveHeap(func(w io.Writer) error {
		for range 64 * mib / 4096 {
			sink = make([]byte, 4096)
			if _, err := w.Write(sink); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	assert.Less(t, drops, float64(mib))

	db := pgtest.Shop(t, shop.Small)
	naiveHeld, err := peakLiveHeap(func(w io.Writer) error { return naive.ExportOrdersCSV(context.Background(), db, w) })
	require.NoError(t, err)
	assert.Greater(t, naiveHeld, float64(8*mib), "naive holds every order")
	for _, impl := range exportOrdersImpls[1:] {
		held, err := peakLiveHeap(func(w io.Writer) error { return impl.export(context.Background(), db, w) })
		require.NoError(t, err)
		assert.Less(t, held, float64(mib), "%s holds a row and a buffer", impl.name)
	}
}

// liveHeapProbe passes what the export writes on to w and, at the first write
// and every liveHeapEvery bytes after it, collects garbage and reads the live
// heap: what the export holds at that moment, not what it allocated and has
// not yet had collected (that is the GC's headroom, at least 4 MiB whatever
// the code holds).
type liveHeapProbe struct {
	w       io.Writer
	written int64
	next    int64 // when to sample next
	peak    uint64
}

const liveHeapEvery = 4 << 20

func (p *liveHeapProbe) Write(b []byte) (int, error) {
	if p.written >= p.next {
		p.peak = max(p.peak, liveHeap())
		p.next = p.written + liveHeapEvery
	}
	p.written += int64(len(b))
	return p.w.Write(b)
}

// liveHeap collects garbage and returns the bytes of heap objects it kept.
func liveHeap() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// peakLiveHeap runs export once and returns the most live heap it held, above
// the live heap before it started, sampled as liveHeapProbe says.
func peakLiveHeap(export func(io.Writer) error) (float64, error) {
	base := liveHeap()
	probe := &liveHeapProbe{w: io.Discard}
	if err := export(probe); err != nil {
		return 0, err
	}
	return float64(probe.peak - min(base, probe.peak)), nil
}

// BenchmarkExportOrders reports the time and the allocations (-benchmem) of
// exports to io.Discard, and live-heap-bytes, measured in one more export
// before the timed ones (its collections would distort the time).
func BenchmarkExportOrders(b *testing.B) {
	ladder := benchkit.Scales()
	for _, impl := range exportOrdersImpls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, scale := range ladder {
				db := pgtest.Shop(b, scale)
				b.Run(benchkit.Name("orders", scale.Orders()), func(b *testing.B) {
					held, err := peakLiveHeap(func(w io.Writer) error { return impl.export(context.Background(), db, w) })
					if err != nil {
						b.Fatal(err)
					}
					for b.Loop() {
						if err := impl.export(context.Background(), db, io.Discard); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(held, "live-heap-bytes")
				})
			}
		})
	}
}
