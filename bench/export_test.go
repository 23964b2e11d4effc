package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/export"
	scalable "works-vs-scales/scalable/export"
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

func TestExportsAreByteIdentical(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	var want []byte
	for _, impl := range exportOrdersImpls {
		var out bytes.Buffer
		require.NoError(t, impl.export(context.Background(), db, &out), impl.name)
		if want == nil {
			want = out.Bytes()
			lines := bytes.Split(bytes.TrimSuffix(want, []byte("\n")), []byte("\n"))
			require.Len(t, lines, 1+shop.Small.Orders(), "a header and a line per order")
			require.Equal(t, "id,created_at,user_id,email,status", string(lines[0]))
			require.Regexp(t, `^1,2021-01-01T\d\d:\d\d:\d\d\.\d{6}Z,\d+,user\d+@example\.com,delivered$`, string(lines[1]))
			continue
		}
		require.Equal(t, sha256.Sum256(want), sha256.Sum256(out.Bytes()), "%s writes other bytes than naive", impl.name)
	}
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

// peakHeap samples the bytes of heap objects, live or not yet collected, every
// 100µs while it runs, and returns the highest above where it started.
type peakHeap struct {
	stop chan struct{}
	done sync.WaitGroup
	base uint64
	peak uint64
}

func startPeakHeap() *peakHeap {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	p := &peakHeap{stop: make(chan struct{}), base: sample[0].Value.Uint64()}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		tick := time.NewTicker(100 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			p.peak = max(p.peak, sample[0].Value.Uint64())
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// Stop ends the sampling and returns the peak above the start, in bytes.
func (p *peakHeap) Stop() float64 {
	close(p.stop)
	p.done.Wait()
	return float64(p.peak - min(p.base, p.peak))
}

func BenchmarkExportOrders(b *testing.B) {
	ladder := benchScales()
	for _, impl := range exportOrdersImpls {
		b.Run(name("impl", impl.name), func(b *testing.B) {
			for _, scale := range ladder {
				db := pgtest.Shop(b, scale)
				b.Run(name("orders", scale.Orders()), func(b *testing.B) {
					peak := startPeakHeap()
					for b.Loop() {
						if err := impl.export(context.Background(), db, io.Discard); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(peak.Stop(), "peak-heap-bytes")
				})
			}
		})
	}
}
