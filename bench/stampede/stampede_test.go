package stampede

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/stampede"
	scalablecaching "works-vs-scales/scalable/caching"
	scalable "works-vs-scales/scalable/stampede"
	"works-vs-scales/shop"
)

// Lesson 7: the stampede, and request deduplication.

const reportTimeout = 10 * time.Second

// The functions where callers of one query wait for it, as runtime.Stack
// names them: see waitParkedIn.
const (
	bestSellersFrame = "scalable/stampede.(*Reports).BestSellers("
	otterWaitFrame   = "maypok86/otter/v2.(*call[...]).waitContext("
)

func TestBestSellersAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	works, err := naive.NewReports(db)
	require.NoError(t, err)
	want, err := works.BestSellers(ctx)
	require.NoError(t, err)
	require.Len(t, want, 10)
	for i := 1; i < len(want); i++ {
		require.GreaterOrEqual(t, want[i-1].Units, want[i].Units, "most sold first")
	}
	scales, err := scalable.NewReports(db, reportTimeout)
	require.NoError(t, err)
	got, err := scales.BestSellers(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// callWhileLockedUntilJoined is benchkit.CallWhileLocked for code whose waiting
// is known: it releases the table only once parked of the n goroutines wait,
// parked in a select, inside the function frame (see waitParkedIn). Every
// caller has then joined the query that waits on the lock, however slow the
// machine, where benchkit.CallWhileLocked's grace only makes a late caller, who
// would run a second query, unlikely.
func callWhileLockedUntilJoined[T any](t *testing.T, db *pgxpool.Pool, table string, n, parked int, frame string, fn func() (T, error)) ([]T, []error) {
	t.Helper()
	release := benchkit.LockTable(t, db, table, "ACCESS EXCLUSIVE")
	results, errs, started, wait := benchkit.CallTogether(n, fn)
	<-started
	benchkit.WaitForLockWaiters(t, db, 1)
	waitParkedIn(t, parked, frame)
	release()
	wait()
	return results, errs
}

// waitParkedIn waits until n goroutines of the test binary are parked in a
// select with frame (a function name as runtime.Stack prints it, such as
// "stampede.(*Reports).BestSellers") on their stack. A goroutine still on its
// way (running, runnable, or waiting for a mutex) does not count. It fails the
// test after benchkit.HangBound.
func waitParkedIn(t testing.TB, n int, frame string) {
	t.Helper()
	parked := 0
	ok := assert.Eventually(t, func() bool {
		parked = 0
		for _, g := range strings.Split(allStacks(), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, "[select") && strings.Contains(g, frame) {
				parked++
			}
		}
		return parked >= n
	}, benchkit.HangBound, time.Millisecond, "%d goroutines waiting in %s", n, frame)
	if !ok {
		t.Fatalf("waiting for %d goroutines parked in %s: saw %d", n, frame, parked)
	}
}

// allStacks returns the stacks of every goroutine, as runtime.Stack prints
// them: one paragraph each.
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestNaiveRunsTheReportForEveryCaller(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	reports, err := naive.NewReports(db)
	require.NoError(t, err)
	ctx, counts := pgtest.CountQueries(context.Background())
	_, errs, _, wait := benchkit.CallTogether(100, func() ([]shop.BestSeller, error) { return reports.BestSellers(ctx) })
	wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(100), counts.Statements())
}

func TestConcurrentCallersShareOneQuery(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	reports, err := scalable.NewReports(db, reportTimeout)
	require.NoError(t, err)
	ctx, counts := pgtest.CountQueries(context.Background())

	results, errs := callWhileLockedUntilJoined(t, db, "order_items", 100, 100, bestSellersFrame, func() ([]shop.BestSeller, error) { return reports.BestSellers(ctx) })

	for i := range results {
		require.NoError(t, errs[i])
		require.Equal(t, results[0], results[i], "every caller gets the same answer")
	}
	require.Len(t, results[0], 10)
	assert.Equal(t, int64(1), counts.Statements(), "100 callers, one query")
}

// TestCancelledCallerDoesNotFailOthers: the caller whose request started the
// query gives up; the query goes on for the others.
func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	reports, err := scalable.NewReports(db, reportTimeout)
	require.NoError(t, err)
	counting, counts := pgtest.CountQueries(context.Background())
	release := benchkit.LockTable(t, db, "order_items", "ACCESS EXCLUSIVE")

	first, giveUp := context.WithCancel(counting)
	firstErr := make(chan error, 1)
	go func() { _, err := reports.BestSellers(first); firstErr <- err }()
	benchkit.WaitForLockWaiters(t, db, 1)

	results, errs, started, wait := benchkit.CallTogether(10, func() ([]shop.BestSeller, error) { return reports.BestSellers(counting) })
	<-started
	waitParkedIn(t, 11, bestSellersFrame) // the first caller and the ten others
	giveUp()
	require.ErrorIs(t, <-firstErr, context.Canceled, "the first caller returns as soon as it gives up")
	release()
	wait()

	for i := range results {
		require.NoError(t, errs[i], "the others still get the report")
		require.Len(t, results[i], 10)
	}
	assert.Equal(t, int64(1), counts.Statements())
}

// TestErrorsAreNotKept: a query that failed fails its caller, and the next
// caller runs it again. The failure is injected on purpose: the query waits on
// a locked table until the test cancels it on the server, so the outcome does
// not depend on how fast the query runs; reportTimeout only bounds a hang.
func TestErrorsAreNotKept(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	reports, err := scalable.NewReports(db, reportTimeout)
	require.NoError(t, err)
	ctx, counts := pgtest.CountQueries(context.Background())

	release := benchkit.LockTable(t, db, "order_items", "ACCESS EXCLUSIVE")
	failed := make(chan error, 1)
	go func() { _, err := reports.BestSellers(ctx); failed <- err }()
	benchkit.WaitForLockWaiters(t, db, 1)
	require.Equal(t, 1, benchkit.CancelLockWaiters(t, db), "queries cancelled while waiting for a lock")
	err = <-failed
	require.True(t, pgtest.IsQueryCanceled(err), "the caller gets the query's error, got %v", err)
	release()

	best, err := reports.BestSellers(ctx)
	require.NoError(t, err, "the error was not kept")
	require.Len(t, best, 10)
	assert.Equal(t, int64(2), counts.Statements())
}

// TestReportTimeoutEndsTheQuery: the query gets at most the reports' timeout,
// whoever waits for it. The table stays locked for longer than the test, so
// the query can only end at its timeout, however loaded the machine.
func TestReportTimeoutEndsTheQuery(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	reports, err := scalable.NewReports(db, 200*time.Millisecond)
	require.NoError(t, err)
	benchkit.LockTable(t, db, "order_items", "ACCESS EXCLUSIVE") // released when the test ends

	// The caller's own bound only ends a hang, with an error of its own: a
	// query without a timeout fails the test rather than passing it.
	errCallerGaveUp := errors.New("the caller gave up: the report's timeout did not end the query")
	ctx, cancel := context.WithTimeoutCause(context.Background(), benchkit.HangBound, errCallerGaveUp)
	defer cancel()
	_, err = reports.BestSellers(ctx)
	require.Error(t, err, "the query times out while the table is locked")
	require.NotErrorIs(t, err, errCallerGaveUp)
	require.True(t, errors.Is(err, context.DeadlineExceeded) || pgtest.IsQueryCanceled(err), "got %v", err)
}

// TestCacheLoaderCoalescesMisses: lesson 6's in-process cache already does
// this for a cold key: its loader runs once for all concurrent misses.
func TestCacheLoaderCoalescesMisses(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	products, err := scalablecaching.NewProducts(db, scalablecaching.Options{TTL: time.Minute, MaxEntries: 100})
	require.NoError(t, err)
	t.Cleanup(products.Close)
	ctx, counts := pgtest.CountQueries(context.Background())

	// 99 callers wait for the load; the 100th runs it, in the loader.
	results, errs := callWhileLockedUntilJoined(t, db, "products", 100, 99, otterWaitFrame, func() (shop.Product, error) { return products.Get(ctx, 42) })

	for i := range results {
		require.NoError(t, errs[i])
		require.Equal(t, int64(42), results[i].ID)
	}
	assert.Equal(t, int64(1), counts.Statements(), "100 concurrent misses, one query")
}

// BenchmarkBestSellers sends bursts of callers at once for the report: its
// time/op is a burst's, until the last caller has its answer, and p50-ms and
// p99-ms are what the callers waited, each timed from its own call. Its
// queries/op equals the callers for naive by construction, not measurement.
func BenchmarkBestSellers(b *testing.B) {
	db := pgtest.Shop(b, shop.Small)
	works, err := naive.NewReports(db)
	if err != nil {
		b.Fatal(err)
	}
	singleflight, err := scalable.NewReports(db, reportTimeout)
	if err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name    string
		reports interface {
			BestSellers(context.Context) ([]shop.BestSeller, error)
		}
	}{
		{"naive", works},
		{"singleflight", singleflight},
	}
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, callers := range benchkit.Ladder(1, 1000) {
				b.Run(benchkit.Name("callers", callers), func(b *testing.B) {
					ctx, counts := pgtest.CountQueries(context.Background())
					var mu sync.Mutex
					var latencies []time.Duration // each caller's, through every burst
					for b.Loop() {
						_, errs, _, wait := benchkit.CallTogether(callers, func() ([]shop.BestSeller, error) {
							start := time.Now()
							sellers, err := impl.reports.BestSellers(ctx)
							mu.Lock()
							latencies = append(latencies, time.Since(start))
							mu.Unlock()
							return sellers, err
						})
						wait()
						for _, err := range errs {
							if err != nil {
								b.Fatal(err)
							}
						}
					}
					benchkit.ReportCounts(b, counts)
					benchkit.ReportLatencies(b, latencies)
				})
			}
		})
	}
}
