package caching

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/redistest"
	"works-vs-scales/internal/rttproxy"
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
	products, err := scalable.NewRedisProducts(db, rdb, scalable.RedisOptions{Prefix: prefix + "product:", TTL: cacheTTL})
	require.NoError(tb, err)
	return products
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
	uncached, err := naive.NewProducts(db)
	require.NoError(t, err)
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
			products, err := naive.NewProducts(db)
			if err != nil {
				b.Fatal(err)
			}
			return products, func() float64 { return 0 }, func() {}
		}},
		{"inprocess", func(int) (productReader, func() float64, func()) {
			products, err := scalable.NewProducts(db, scalable.Options{TTL: cacheTTL, MaxEntries: 100})
			if err != nil {
				b.Fatal(err)
			}
			return products, products.HitRatio, products.Close
		}},
		{"redis", func(op int) (productReader, func() float64, func()) {
			products, err := scalable.NewRedisProducts(db, rdb, scalable.RedisOptions{Prefix: fmt.Sprintf("%sop%d:", prefix, op), TTL: cacheTTL})
			if err != nil {
				b.Fatal(err)
			}
			return products, products.HitRatio, func() {}
		}},
	}
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, n := range benchkit.Ladder(100, 10_000) {
				requests := productRequests(n, shop.Small.Products())
				b.Run(benchkit.Name("requests", n), func(b *testing.B) {
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
					benchkit.ReportCounts(b, counts)
					b.ReportMetric(hitRatio/float64(b.N), "hit-ratio")
				})
			}
		})
	}
}

// requireInvalidConfig fails t unless err is a configuration error in both
// vocabularies: the cache's [scalable.ErrInvalidOptions] and the workshop's
// [shop.ErrInvalidConfig].
func requireInvalidConfig(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	require.ErrorIs(t, err, scalable.ErrInvalidOptions, msgAndArgs...)
	require.ErrorIs(t, err, shop.ErrInvalidConfig, msgAndArgs...)
}

// TestCacheOptionsThatCannotWorkAreRefused: both tiers refuse, at
// construction, a configuration that cannot work, with an error that is the
// workshop's [shop.ErrInvalidConfig], and accept the same TTLs: a TTL of zero
// would make Redis keep a key for ever while the process keeps it not at all.
func TestCacheOptionsThatCannotWorkAreRefused(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	rdb, prefix := redistest.Client(t)
	inProcess := func(opts scalable.Options) error {
		products, err := scalable.NewProducts(db, opts)
		if err == nil {
			products.Close()
		}
		return err
	}
	inRedis := func(opts scalable.RedisOptions) error {
		_, err := scalable.NewRedisProducts(db, rdb, opts)
		return err
	}
	const year = 365 * 24 * time.Hour
	for _, ttl := range []time.Duration{0, -time.Second, time.Nanosecond, time.Millisecond - 1, year + 1, math.MaxInt64} {
		requireInvalidConfig(t, inProcess(scalable.Options{TTL: ttl, MaxEntries: 100}), "in process, TTL %v", ttl)
		requireInvalidConfig(t, inRedis(scalable.RedisOptions{Prefix: prefix, TTL: ttl}), "Redis, TTL %v", ttl)
	}
	for _, ttl := range []time.Duration{time.Millisecond, time.Minute, year} {
		require.NoError(t, inProcess(scalable.Options{TTL: ttl, MaxEntries: 100}), "in process, TTL %v", ttl)
		require.NoError(t, inRedis(scalable.RedisOptions{Prefix: prefix, TTL: ttl}), "Redis, TTL %v", ttl)
	}
	require.NoError(t, inProcess(scalable.Options{TTL: time.Minute, MaxEntries: math.MaxInt}), "a huge bound allocates nothing up front")
	for _, entries := range []int{0, -1, math.MinInt} {
		requireInvalidConfig(t, inProcess(scalable.Options{TTL: time.Minute, MaxEntries: entries}), "MaxEntries %d", entries)
	}
	for _, timeouts := range []redis.Options{{ReadTimeout: -1}, {ReadTimeout: -2}, {WriteTimeout: -1}, {WriteTimeout: -2}} {
		timeouts.Addr = "127.0.0.1:1" // never dialled
		noDeadline := redis.NewClient(&timeouts)
		t.Cleanup(func() { noDeadline.Close() })
		_, err := scalable.NewRedisProducts(db, noDeadline, scalable.RedisOptions{Prefix: prefix, TTL: time.Minute})
		requireInvalidConfig(t, err, "read timeout %v, write timeout %v", timeouts.ReadTimeout, timeouts.WriteTimeout)
	}
	requireInvalidConfig(t, inRedis(scalable.RedisOptions{TTL: time.Minute}), "no prefix")
	_, err := scalable.NewProducts(nil, scalable.Options{TTL: time.Minute, MaxEntries: 100})
	requireInvalidConfig(t, err, "no database")
	_, err = scalable.NewRedisProducts(nil, rdb, scalable.RedisOptions{Prefix: prefix, TTL: time.Minute})
	requireInvalidConfig(t, err, "no database")
	_, err = scalable.NewRedisProducts(db, nil, scalable.RedisOptions{Prefix: prefix, TTL: time.Minute})
	requireInvalidConfig(t, err, "no Redis")
}

// TestRedisCacheIsFilledWithItsTTL: the key Redis keeps expires after the
// TTL asked for, not never.
func TestRedisCacheIsFilledWithItsTTL(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	rdb, prefix := redistest.Client(t)
	products, err := scalable.NewRedisProducts(db, rdb, scalable.RedisOptions{Prefix: prefix, TTL: cacheTTL})
	require.NoError(t, err)
	_, err = products.Get(context.Background(), 7)
	require.NoError(t, err)
	ttl, err := rdb.PTTL(context.Background(), products.Key(7)).Result()
	require.NoError(t, err)
	assert.Positive(t, ttl)
	assert.LessOrEqual(t, ttl, cacheTTL)
}

// redisProducts returns scalable's products cached in Redis on a client of
// their own (a hook added to it is the test's alone) with a timeout no
// healthy round trip meets, for the tests that plant or refuse what Redis
// holds without breaking the network: a fault test's short timeout, there to
// end a hung read soon, fails a round trip that a busy machine (the race
// detector, a neighbour's load) made slow, and counts a cache error the test
// did not cause.
func redisProducts(t *testing.T, db *pgxpool.Pool) (*scalable.RedisProducts, *redis.Client, string) {
	t.Helper()
	rdb, prefix, _ := redistest.ClientWithFaults(t, benchkit.HangBound)
	products, err := scalable.NewRedisProducts(db, rdb, scalable.RedisOptions{Prefix: prefix, TTL: cacheTTL})
	require.NoError(t, err)
	return products, rdb, prefix
}

func faultyRedisProducts(t *testing.T, db *pgxpool.Pool) (*scalable.RedisProducts, *redis.Client, string, *rttproxy.Proxy) {
	t.Helper()
	rdb, prefix, proxy := redistest.ClientWithFaults(t, 100*time.Millisecond)
	products, err := scalable.NewRedisProducts(db, rdb, scalable.RedisOptions{Prefix: prefix, TTL: cacheTTL})
	require.NoError(t, err)
	return products, rdb, prefix, proxy
}

// TestRedisUnreachableFallsBackToTheDatabase: a cache may only make reads
// faster. With Redis refusing connections, or holding every byte, each read
// is answered by PostgreSQL, right, and the failures are counted.
func TestRedisUnreachableFallsBackToTheDatabase(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	uncached, err := naive.NewProducts(db)
	require.NoError(t, err)
	want, err := uncached.Get(ctx, 7)
	require.NoError(t, err)
	for _, fault := range []string{"down", "hung"} {
		t.Run(fault, func(t *testing.T) {
			products, _, _, proxy := faultyRedisProducts(t, db)
			_, err := products.Get(ctx, 7) // fills the cache, through the proxy
			require.NoError(t, err)
			switch fault {
			case "down":
				t.Cleanup(proxy.Up)
				proxy.Down()
			case "hung":
				t.Cleanup(proxy.Resume)
				proxy.Hang()
			}
			for range 3 {
				ctx, counts := pgtest.CountQueries(ctx)
				got, err := products.Get(ctx, 7)
				require.NoError(t, err)
				assert.Equal(t, want, got)
				assert.Equal(t, int64(1), counts.Statements(), "each read falls back to one query")
			}
			assert.Positive(t, products.CacheErrors(), "the failures are counted")
		})
	}
}

// failWrites makes every SET through the client it is added to fail.
type failWrites struct{}

func (failWrites) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failWrites) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "set" {
			cmd.SetErr(errors.New("injected: the cache refuses writes"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (failWrites) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestFailedCacheFillDoesNotFailTheRead: PostgreSQL answered; that Redis
// could not keep the answer is the cache's problem, not the reader's.
func TestFailedCacheFillDoesNotFailTheRead(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	uncached, err := naive.NewProducts(db)
	require.NoError(t, err)
	want, err := uncached.Get(ctx, 9)
	require.NoError(t, err)
	products, rdb, _ := redisProducts(t, db)
	rdb.AddHook(failWrites{})
	got, err := products.Get(ctx, 9)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, int64(1), products.CacheErrors())
}

// TestCorruptCachedValueIsNotServed: what Redis holds under a product's key
// is served only if it decodes to that product; anything else is read again
// from PostgreSQL and replaced.
func TestCorruptCachedValueIsNotServed(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	uncached, err := naive.NewProducts(db)
	require.NoError(t, err)
	want, err := uncached.Get(ctx, 11)
	require.NoError(t, err)
	other, err := uncached.Get(ctx, 12)
	require.NoError(t, err)
	otherJSON, err := json.Marshal(other)
	require.NoError(t, err)
	for name, value := range map[string]string{
		"not JSON":      `{"id":11,"name":`,
		"another id":    string(otherJSON),
		"null":          `null`,
		"empty object":  `{}`,
		"array":         `[11]`,
		"empty":         ``,
		"binary":        "\x00\xff\xfe",
		"trailing junk": `{"id":11,"name":"x","category":"y","price_cents":1} junk`,
		// The format before ProductFormat v2, planted under v2's key: its
		// names match v2's but for case, which encoding/json ignores, and
		// its price would have been read as 0.
		"the v1 format":          `{"ID":11,"Name":"x","Category":"y"}`,
		"a member twice":         `{"id":11,"name":"x","category":"y","price_cents":1,"price_cents":2}`,
		"a null price":           `{"id":11,"name":"x","category":"y","price_cents":null}`,
		"a member in other case": `{"id":11,"name":"x","category":"y","Price_Cents":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			products, rdb, _ := redisProducts(t, db)
			require.NoError(t, rdb.Set(ctx, products.Key(11), value, time.Minute).Err())
			qctx, counts := pgtest.CountQueries(ctx)
			got, err := products.Get(qctx, 11)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, int64(1), counts.Statements(), "read again from PostgreSQL")
			assert.Equal(t, int64(1), products.CacheErrors())

			qctx, counts = pgtest.CountQueries(ctx)
			got, err = products.Get(qctx, 11)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Zero(t, counts.Statements(), "the bad value was replaced")
		})
	}
}

// TestOldFormatIsNeverRead: the entries of the code before ProductFormat v2,
// still in Redis until their TTL or written on by its servers during a
// rolling deploy, are under keys the new code never reads: a read of the
// product misses (no cache error: nothing was misread), goes to
// PostgreSQL, and writes the new format under the new key, leaving the old
// entry to the old code.
func TestOldFormatIsNeverRead(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	uncached, err := naive.NewProducts(db)
	require.NoError(t, err)
	want, err := uncached.Get(ctx, 11)
	require.NoError(t, err)
	products, rdb, prefix := redisProducts(t, db)
	v1Key := prefix + "11" // v1's key: the prefix and the id
	v1 := fmt.Sprintf(`{"ID":11,"Name":%q,"Category":%q,"PriceCents":1}`, want.Name, want.Category)
	require.NoError(t, rdb.Set(ctx, v1Key, v1, time.Minute).Err())

	qctx, counts := pgtest.CountQueries(ctx)
	got, err := products.Get(qctx, 11)
	require.NoError(t, err)
	assert.Equal(t, want, got, "the price is the database's, not the old entry's 1")
	assert.Equal(t, int64(1), counts.Statements(), "a miss: read from PostgreSQL")
	assert.Zero(t, products.CacheErrors(), "the old entry was never read")
	stored, err := rdb.Get(ctx, products.Key(11)).Result()
	require.NoError(t, err)
	assert.JSONEq(t, fmt.Sprintf(`{"id":11,"name":%q,"category":%q,"price_cents":%d}`, want.Name, want.Category, want.PriceCents), stored)
	old, err := rdb.Get(ctx, v1Key).Result()
	require.NoError(t, err)
	assert.Equal(t, v1, old, "the old code's entry is left to it")
}

// TestNegativePriceIsRefused: every version refuses a price below zero, and
// the product keeps its price.
func TestNegativePriceIsRefused(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	readers := cachedReaders(t, db)
	uncached, err := naive.NewProducts(db)
	require.NoError(t, err)
	readers["naive"] = uncached
	before, err := uncached.Get(ctx, 4)
	require.NoError(t, err)
	for name, products := range readers {
		for _, price := range []int64{-1, math.MinInt64} {
			err := products.SetPrice(ctx, 4, price)
			if name == "naive" {
				require.ErrorIs(t, err, naive.ErrNegativePrice, name)
			} else {
				require.ErrorIs(t, err, scalable.ErrNegativePrice, name)
			}
		}
		require.NoError(t, products.SetPrice(ctx, 4, 0), "%s: zero is a price", name)
		require.NoError(t, products.SetPrice(ctx, 4, before.PriceCents), name)
	}
	after, err := uncached.Get(ctx, 4)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

// TestCallerGivingUpIsNotACacheError: a read whose caller cancelled fails
// with the caller's error, and Redis is not blamed for it.
func TestCallerGivingUpIsNotACacheError(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	products := newInRedis(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := products.Get(ctx, 13)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, products.CacheErrors())
}
