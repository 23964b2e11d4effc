// Package caching serves the product page through a cache, cache-aside: read
// the cache; on a miss, read PostgreSQL and keep the answer for a while. Two
// tiers: Products keeps products in the process, with a bound on their number
// and a time to live (otter); RedisProducts keeps them in Redis, shared by a
// fleet of app servers.
//
// A cache trades freshness and memory for load: a reader may see a price up to
// the TTL old, unless every write that changes it also evicts it.
//
// Compare with works-vs-scales/naive/caching.
package caching

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"

	"works-vs-scales/shop"
)

// ErrProductNotFound is returned when no product has the requested id.
var ErrProductNotFound = errors.New("product not found")

// ErrNegativePrice is returned for a price below zero.
var ErrNegativePrice = errors.New("negative price")

// ErrInvalidOptions is returned by the constructors for a configuration that
// cannot work. It wraps [shop.ErrInvalidConfig], as every configuration error
// in the workshop does.
var ErrInvalidOptions = fmt.Errorf("cache options: %w", shop.ErrInvalidConfig)

// Options configure the in-process cache.
type Options struct {
	// TTL is how long a product is served from the cache after it was read:
	// the most a reader can lag behind a write that does not evict it. From
	// MinTTL to MaxTTL.
	TTL time.Duration
	// MaxEntries bounds how many products the cache holds; the least useful
	// are evicted first.
	MaxEntries int
	// Clock, if set, replaces the wall clock (tests move time by hand).
	Clock otter.Clock
}

// The TTLs both tiers accept. Redis counts a TTL in whole milliseconds (and
// keeps a key for ever without one); a cached copy kept for more than a year
// is a second database, not a cache.
const (
	MinTTL = time.Millisecond
	MaxTTL = 365 * 24 * time.Hour
)

// checkTTL returns an error wrapping ErrInvalidOptions for a TTL outside
// [MinTTL, MaxTTL].
func checkTTL(ttl time.Duration) error {
	if ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("product cache: %w: TTL %v, want %v to %v", ErrInvalidOptions, ttl, MinTTL, MaxTTL)
	}
	return nil
}

// Products reads and reprices the shop's products, keeping the products it
// read in the process.
type Products struct {
	db    *pgxpool.Pool
	cache *otter.Cache[int64, shop.Product]
	stats *stats.Counter
}

// NewProducts returns Products on db with a cache configured by opts.
func NewProducts(db *pgxpool.Pool, opts Options) (*Products, error) {
	if db == nil {
		return nil, fmt.Errorf("product cache: %w: no database", ErrInvalidOptions)
	}
	if err := checkTTL(opts.TTL); err != nil {
		return nil, err
	}
	if opts.MaxEntries <= 0 {
		return nil, fmt.Errorf("product cache: %w: MaxEntries %d, want at least 1", ErrInvalidOptions, opts.MaxEntries)
	}
	counter := stats.NewCounter()
	cache, err := otter.New(&otter.Options[int64, shop.Product]{
		MaximumSize:      opts.MaxEntries,
		ExpiryCalculator: otter.ExpiryWriting[int64, shop.Product](opts.TTL),
		StatsRecorder:    counter,
		Clock:            opts.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("product cache: %w", err)
	}
	return &Products{db: db, cache: cache, stats: counter}, nil
}

// Get returns the product with the given id, from the cache when it holds it,
// from PostgreSQL when not. Concurrent misses for one id share one query: the
// cache's loader runs once and the others wait for it. Errors are not cached.
func (p *Products) Get(ctx context.Context, id int64) (shop.Product, error) {
	return p.cache.Get(ctx, id, otter.LoaderFunc[int64, shop.Product](func(ctx context.Context, id int64) (shop.Product, error) {
		return loadProduct(ctx, p.db, id)
	}))
}

// SetPrice changes the product's price, then evicts it, so that the next
// read, here, sees the new price. Other processes keep theirs until the TTL.
// A price below zero is refused with ErrNegativePrice.
func (p *Products) SetPrice(ctx context.Context, id, priceCents int64) error {
	if err := setPrice(ctx, p.db, id, priceCents); err != nil {
		return err
	}
	p.cache.Invalidate(id)
	return nil
}

// HitRatio is the share of Gets served from the cache so far.
func (p *Products) HitRatio() float64 { return p.stats.Snapshot().HitRatio() }

// Len is how many products the cache holds, after pending evictions.
func (p *Products) Len() int {
	p.cache.CleanUp()
	return p.cache.EstimatedSize()
}

// Close stops the cache's background work.
func (p *Products) Close() { p.cache.StopAllGoroutines() }

// loadProduct reads one product from PostgreSQL.
func loadProduct(ctx context.Context, db *pgxpool.Pool, id int64) (shop.Product, error) {
	// Uses products_pkey.
	const productQuery = `SELECT id, name, category, price_cents FROM products WHERE id = $1`
	var product shop.Product
	err := db.QueryRow(ctx, productQuery, id).Scan(&product.ID, &product.Name, &product.Category, &product.PriceCents)
	if errors.Is(err, pgx.ErrNoRows) {
		return shop.Product{}, fmt.Errorf("product %d: %w", id, ErrProductNotFound)
	}
	if err != nil {
		return shop.Product{}, fmt.Errorf("product %d: %w", id, err)
	}
	return product, nil
}

func setPrice(ctx context.Context, db *pgxpool.Pool, id, priceCents int64) error {
	if priceCents < 0 {
		return fmt.Errorf("set price of product %d to %d: %w", id, priceCents, ErrNegativePrice)
	}
	const repriceQuery = `UPDATE products SET price_cents = $2 WHERE id = $1`
	tag, err := db.Exec(ctx, repriceQuery, id, priceCents)
	if err != nil {
		return fmt.Errorf("set price of product %d to %d: %w", id, priceCents, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set price of product %d: %w", id, ErrProductNotFound)
	}
	return nil
}
