package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/redistest"
	naive "works-vs-scales/naive/caching"
	scalable "works-vs-scales/scalable/caching"
	"works-vs-scales/shop"
)

// Lesson 6: no cache, cache-aside in the process, cache-aside in Redis.

// productReader is what the three versions share.
type productReader interface {
	Get(ctx context.Context, id int64) (shop.Product, error)
	SetPrice(ctx context.Context, id, priceCents int64) error
}

// cacheTTL is long enough that nothing expires during a test or benchmark,
// unless a test moves the clock.
const cacheTTL = time.Minute

func newInProcess(tb testing.TB, db *pgxpool.Pool, opts scalable.Options) *scalable.Products {
	tb.Helper()
	products, err := scalable.NewProducts(db, opts)
	require.NoError(tb, err)
	tb.Cleanup(products.Close)
	return products
}

func newInRedis(tb testing.TB, db *pgxpool.Pool) *scalable.RedisProducts {
	tb.Helper()
	rdb, prefix := redistest.Client(tb)
	return scalable.NewRedisProducts(db, rdb, scalable.RedisOptions{Prefix: prefix + "product:", TTL: cacheTTL})
}

// cachedReaders returns the two cached versions on db.
func cachedReaders(t *testing.T, db *pgxpool.Pool) map[string]productReader {
	return map[string]productReader{
		"inprocess": newInProcess(t, db, scalable.Options{TTL: cacheTTL, MaxEntries: 100}),
		"redis":     newInRedis(t, db),
	}
}

func TestCachedProductsAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	uncached := naive.NewProducts(db)
	for name, cached := range cachedReaders(t, db) {
		for id := int64(1); id <= 20; id++ {
			want, err := uncached.Get(ctx, id)
			require.NoError(t, err)
			for range 2 { // a miss, then a hit
				got, err := cached.Get(ctx, id)
				require.NoError(t, err, name)
				require.Equal(t, want, got, "%s, product %d", name, id)
			}
		}
	}
}

// TestCacheHitsMakeNoQuery: a miss reads PostgreSQL once, a hit not at all;
// an unknown product is an error, and errors are not cached.
func TestCacheHitsMakeNoQuery(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	unknown := int64(shop.Small.Products() + 1)
	for name, cached := range cachedReaders(t, db) {
		for _, step := range []struct {
			id      int64
			queries int64
		}{{7, 1}, {7, 0}, {7, 0}, {unknown, 1}, {unknown, 1}} {
			ctx, counts := pgtest.CountQueries(context.Background())
			_, err := cached.Get(ctx, step.id)
			if step.id == unknown {
				require.ErrorIs(t, err, scalable.ErrProductNotFound, name)
			} else {
				require.NoError(t, err, name)
			}
			assert.Equal(t, step.queries, counts.Statements(), "%s: queries for product %d", name, step.id)
		}
	}
}

func TestRepricingEvictsTheCachedProduct(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	for name, cached := range cachedReaders(t, db) {
		before, err := cached.Get(ctx, 3)
		require.NoError(t, err)
		newPrice := before.PriceCents + 100
		require.NoError(t, cached.SetPrice(ctx, 3, newPrice))
		after, err := cached.Get(ctx, 3)
		require.NoError(t, err)
		assert.Equal(t, newPrice, after.PriceCents, "%s: the next read sees the new price", name)
	}
}

// manualClock is a clock for the in-process cache that moves only when told.
type manualClock struct{ now atomic.Int64 }

func (c *manualClock) NowNano() int64                      { return c.now.Load() }
func (c *manualClock) Tick(time.Duration) <-chan time.Time { return nil }
func (c *manualClock) Advance(d time.Duration)             { c.now.Add(int64(d)) }

// TestStaleUntilTheTTLWithoutEviction: a price changed behind the cache's back
// (an admin tool, another service writing the table) is not seen until the
// cached copy expires.
func TestStaleUntilTheTTLWithoutEviction(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	clock := &manualClock{}
	clock.now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	const ttl = 30 * time.Second
	cached := newInProcess(t, db, scalable.Options{TTL: ttl, MaxEntries: 100, Clock: clock})

	before, err := cached.Get(ctx, 5)
	require.NoError(t, err)
	_, err = db.Exec(ctx, "UPDATE products SET price_cents = price_cents + 100 WHERE id = 5")
	require.NoError(t, err)

	clock.Advance(ttl - time.Second)
	stale, err := cached.Get(ctx, 5)
	require.NoError(t, err)
	assert.Equal(t, before.PriceCents, stale.PriceCents, "a second before the TTL: the old price")

	clock.Advance(2 * time.Second)
	fresh, err := cached.Get(ctx, 5)
	require.NoError(t, err)
	assert.Equal(t, before.PriceCents+100, fresh.PriceCents, "after the TTL: the new price")
}

func TestInProcessCacheStaysWithinItsBound(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	const bound = 100
	cached := newInProcess(t, db, scalable.Options{TTL: cacheTTL, MaxEntries: bound})
	for id := int64(1); id <= int64(shop.Small.Products()); id++ {
		_, err := cached.Get(context.Background(), id)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, cached.Len(), bound)
	assert.Positive(t, cached.Len())
}

// productRequests returns n product ids as visitors ask for them: a few
// bestsellers most of the time, a long tail now and then. The same n gives the
// same requests.
func productRequests(n, products int) []int64 {
	r := rand.New(rand.NewPCG(uint64(n), 6))
	popular := rand.NewZipf(r, 1.1, 1, uint64(products-1))
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(1 + popular.Uint64())
	}
	return ids
}

// coldStarts numbers the benchmark's operations across all its runs (-count),
// so that every operation's Redis keys are new: a cold cache.
var coldStarts atomic.Int64

// BenchmarkGetProduct: each operation is a cold start and then n requests
// over the skewed product ids; the caches start empty every operation.
func BenchmarkGetProduct(b *testing.B) {
	db := pgtest.Shop(b, shop.Small)
	rdb, prefix := redistest.Client(b)
	impls := []struct {
		name string
		open func(op int) (productReader, func() float64, func())
	}{
		{"naive", func(int) (productReader, func() float64, func()) {
			return naive.NewProducts(db), func() float64 { return 0 }, func() {}
		}},
		{"inprocess", func(int) (productReader, func() float64, func()) {
			products, err := scalable.NewProducts(db, scalable.Options{TTL: cacheTTL, MaxEntries: 100})
			if err != nil {
				b.Fatal(err)
			}
			return products, products.HitRatio, products.Close
		}},
		{"redis", func(op int) (productReader, func() float64, func()) {
			products := scalable.NewRedisProducts(db, rdb, scalable.RedisOptions{Prefix: fmt.Sprintf("%sop%d:", prefix, op), TTL: cacheTTL})
			return products, products.HitRatio, func() {}
		}},
	}
	for _, impl := range impls {
		b.Run(name("impl", impl.name), func(b *testing.B) {
			for _, n := range ladder(100, 10_000) {
				requests := productRequests(n, shop.Small.Products())
				b.Run(name("requests", n), func(b *testing.B) {
					ctx, counts := pgtest.CountQueries(context.Background())
					hitRatio := 0.0
					for b.Loop() {
						products, ratio, close := impl.open(int(coldStarts.Add(1)))
						for _, id := range requests {
							if _, err := products.Get(ctx, id); err != nil {
								b.Fatal(err)
							}
						}
						hitRatio += ratio()
						close()
					}
					reportCounts(b, counts)
					b.ReportMetric(hitRatio/float64(b.N), "hit-ratio")
				})
			}
		})
	}
}
