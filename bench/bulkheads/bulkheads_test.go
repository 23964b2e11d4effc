package bulkheads

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/bulkheads"
	scalable "works-vs-scales/scalable/bulkheads"
	"works-vs-scales/shop"
)

// Lesson 11: one shared pool, and bulkheads. Search gets stuck the way it
// does in production when something holds a lock on products (a migration,
// a long transaction): each search waits on the lock, holding a connection.

const (
	sharedPoolSize  = 8                      // the naive pool: the bulkheads' three pools add up to it
	stuckSearchers  = 16                     // searches in flight while search is stuck: more than any pool holds
	requestDeadline = 300 * time.Millisecond // how long a user's request may take, in the tests
)

// workloads is what lesson 11's two versions serve.
type workloads interface {
	RecentOrders(ctx context.Context, userID int64) ([]shop.Order, error)
	SearchProducts(ctx context.Context, term string) ([]shop.Product, error)
	UserPayments(ctx context.Context, userID int64) ([]shop.Payment, error)
}

// bulkheadPools returns the bulkheads' pools on db's database, closed when the
// test ends.
func bulkheadPools(tb testing.TB, db *pgxpool.Pool) scalable.Pools {
	tb.Helper()
	pools, err := scalable.OpenPools(context.Background(), db.Config(), scalable.DefaultSizes)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pools.Close)
	return pools
}

// stickSearch locks products through db and keeps stuckSearchers searches
// in flight on served until stop, which releases the lock and waits for them.
// It returns once stuck searches hold n connections. If the test ends first
// (a failure while waiting), a cleanup registered before the searches start
// stops them, so the test's pools close instead of waiting for ever.
func stickSearch(tb testing.TB, db *pgxpool.Pool, served workloads, n int) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var searchers sync.WaitGroup
	var once sync.Once
	var release func()
	stop = func() {
		once.Do(func() {
			cancel()
			if release != nil {
				release()
			}
			searchers.Wait()
		})
	}
	tb.Cleanup(stop) // registered before the lock is taken and the searches start
	release = benchkit.LockTable(tb, db, "products", "ACCESS EXCLUSIVE")
	for range stuckSearchers {
		searchers.Go(func() {
			for ctx.Err() == nil {
				served.SearchProducts(ctx, "steel") // fails at its deadline, if it has one
			}
		})
	}
	benchkit.WaitForLockWaiters(tb, db, n)
	return stop
}

func TestBulkheadWorkloadsAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	works, err := naive.New(db)
	require.NoError(t, err)
	scales, err := scalable.New(bulkheadPools(t, db), scalable.DefaultTimeouts)
	require.NoError(t, err)

	wantOrders, err := works.RecentOrders(ctx, 1)
	require.NoError(t, err)
	require.Len(t, wantOrders, 10)
	gotOrders, err := scales.RecentOrders(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, wantOrders, gotOrders)

	wantProducts, err := works.SearchProducts(ctx, "a")
	require.NoError(t, err)
	require.NotEmpty(t, wantProducts)
	gotProducts, err := scales.SearchProducts(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, wantProducts, gotProducts)

	wantPayments, err := works.UserPayments(ctx, 1)
	require.NoError(t, err)
	gotPayments, err := scales.UserPayments(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, wantPayments, gotPayments)
}

func TestStuckSearchTakesTheSharedPool(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	pool := benchkit.SharedPool(t, db, sharedPoolSize)
	works, err := naive.New(pool)
	require.NoError(t, err)
	stop := stickSearch(t, db, works, sharedPoolSize)
	defer stop()

	assert.Equal(t, int32(sharedPoolSize), pool.Stat().AcquiredConns(), "search holds every connection")
	ctx, cancel := context.WithTimeout(context.Background(), requestDeadline)
	defer cancel()
	_, err = works.RecentOrders(ctx, 1)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "orders, which did nothing wrong, time out")
	_, err = works.UserPayments(ctx, 1)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "and so do payments")
}

// generousTimeouts give every workload benchkit.HangBound.
var generousTimeouts = scalable.Timeouts{Orders: benchkit.HangBound, Search: benchkit.HangBound, Payments: benchkit.HangBound}

// TestBulkheadsKeepOrdersAndPaymentsServed: while stuck searches fill the
// search pool, orders and payments still get answers from their own pools, and
// a new search fails at its own deadline. Success gets benchkit.HangBound, so
// it does not race the clock on a loaded machine; the failure is certain, since
// the search pool stays full and products locked until the test stops them.
func TestBulkheadsKeepOrdersAndPaymentsServed(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	works, err := naive.New(db)
	require.NoError(t, err)
	want, err := works.RecentOrders(context.Background(), 1)
	require.NoError(t, err)
	pools := bulkheadPools(t, db)
	scales, err := scalable.New(pools, generousTimeouts)
	require.NoError(t, err)
	stop := stickSearch(t, db, scales, int(scalable.DefaultSizes.Search))
	defer stop()

	got, err := scales.RecentOrders(context.Background(), 1)
	require.NoError(t, err, "orders are served from their own pool")
	assert.Equal(t, want, got)
	_, err = scales.UserPayments(context.Background(), 1)
	require.NoError(t, err, "and so are payments")
	assert.Equal(t, scalable.DefaultSizes.Search, pools.Search.Stat().AcquiredConns(), "search is full")

	short, err := scalable.New(pools, scalable.DefaultTimeouts)
	require.NoError(t, err)
	_, err = short.SearchProducts(context.Background(), "steel")
	assert.ErrorIs(t, err, context.DeadlineExceeded, "search fails, at its own deadline, alone")
}

// BenchmarkOrdersWhileSearchIsStuck measures n users asking for their orders
// at once while search is stuck: latency and errors of orders, with a
// deadline of 1 s per request, and how full the pool serving orders is as
// each request arrives (orders-pool-busy-%, the mean over requests of the
// share of its connections in use).
func BenchmarkOrdersWhileSearchIsStuck(b *testing.B) {
	const deadline = time.Second
	impls := []struct {
		name string
		new  func(tb testing.TB, db *pgxpool.Pool) (workloads, *pgxpool.Pool, int)
	}{
		{"naive", func(tb testing.TB, db *pgxpool.Pool) (workloads, *pgxpool.Pool, int) {
			pool := benchkit.SharedPool(tb, db, sharedPoolSize)
			served, err := naive.New(pool)
			if err != nil {
				tb.Fatal(err)
			}
			return served, pool, sharedPoolSize
		}},
		{"bulkhead", func(tb testing.TB, db *pgxpool.Pool) (workloads, *pgxpool.Pool, int) {
			pools := bulkheadPools(tb, db)
			served, err := scalable.New(pools, scalable.DefaultTimeouts)
			if err != nil {
				tb.Fatal(err)
			}
			return served, pools.Orders, int(scalable.DefaultSizes.Search)
		}},
	}
	for _, callers := range benchkit.Sizes(100) {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("impl=%s/callers=%d", impl.name, callers), func(b *testing.B) {
				// Both versions split the same connections; a smaller pool would
				// change the split the lesson compares, so a room's budget skips.
				benchkit.SkipAboveBudget(b, sharedPoolSize)
				db := pgtest.ShopClone(b, shop.Small) // a copy: the read-only one refuses LOCK TABLE
				served, ordersPool, stuck := impl.new(b, db)
				stop := stickSearch(b, db, served, stuck)
				defer stop()
				canceledBefore := ordersPool.Stat().CanceledAcquireCount()
				var latencies []time.Duration
				failed := 0
				var busy float64 // the orders pool's busy share each caller found, summed
				for b.Loop() {
					took, errs := make([]time.Duration, callers), make([]error, callers)
					found := make([]float64, callers)
					var users sync.WaitGroup
					for i := range callers {
						users.Go(func() {
							ctx, cancel := context.WithTimeout(context.Background(), deadline)
							defer cancel()
							// Sampled by each caller as it arrives, during the burst: after it,
							// every pool is idle again by construction.
							stat := ordersPool.Stat()
							found[i] = float64(stat.AcquiredConns()) / float64(stat.MaxConns())
							start := time.Now()
							_, errs[i] = served.RecentOrders(ctx, int64(i%100+1))
							took[i] = time.Since(start)
						})
					}
					users.Wait()
					latencies = append(latencies, took...)
					for i, err := range errs {
						if err != nil {
							failed++
						}
						busy += found[i]
					}
				}
				benchkit.ReportLatencies(b, latencies)
				b.ReportMetric(100*float64(failed)/float64(len(latencies)), "errors-%")
				b.ReportMetric(100*busy/float64(len(latencies)), "orders-pool-busy-%")
				b.ReportMetric(float64(ordersPool.Stat().CanceledAcquireCount()-canceledBefore)/float64(b.N), "acquires-given-up/op")
			})
		}
	}
}

// TestDeadlineGetsOrdersOutOfAHungDatabase: against a database that never
// answers, a call ends at its own deadline though the caller set none, and once
// the database answers again the pool serves the next call. The calls that must
// succeed get benchkit.HangBound, so a loaded machine cannot fail them; the
// hung call can only end at its deadline, since the proxy passes nothing until
// Resume.
func TestDeadlineGetsOrdersOutOfAHungDatabase(t *testing.T) {
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
	pools := bulkheadPools(t, db)
	generous, err := scalable.New(pools, generousTimeouts)
	require.NoError(t, err)
	short, err := scalable.New(pools, scalable.DefaultTimeouts)
	require.NoError(t, err)
	want, err := generous.RecentOrders(context.Background(), 1)
	require.NoError(t, err)

	t.Cleanup(proxy.Resume) // before the hang: the pools close even if the test fails while hung
	proxy.Hang()            // the network drops every packet: no error, no answer
	_, err = short.RecentOrders(context.Background(), 1)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the call's own deadline ends the wait; the caller set none")

	proxy.Resume()
	got, err := generous.RecentOrders(context.Background(), 1)
	require.NoError(t, err, "the pool replaces the connection it gave up on")
	assert.Equal(t, want, got)
}
