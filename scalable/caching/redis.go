package caching

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"works-vs-scales/internal/strictjson"
	"works-vs-scales/shop"
)

// RedisProducts reads and reprices the shop's products, keeping the products
// it read in Redis, where every app server of a fleet finds them.
//
// A hit costs a round trip to Redis instead of one to PostgreSQL: the gain is
// the load taken off the database, not always time.
type RedisProducts struct {
	db   *pgxpool.Pool
	rdb  *redis.Client
	opts RedisOptions

	hits, misses, cacheErrors atomic.Int64
}

// RedisOptions configure the Redis cache.
type RedisOptions struct {
	// Prefix starts every key the cache writes, e.g. "product:"; not empty,
	// so that the cache's keys stay apart from everything else in Redis.
	Prefix string
	// TTL is how long Redis keeps a product after it was read: the most a
	// reader can lag behind a write that does not evict it. From MinTTL to
	// MaxTTL, as for the in-process cache.
	TTL time.Duration
}

// NewRedisProducts returns RedisProducts on db, caching in rdb as opts say,
// or an error wrapping ErrInvalidOptions for options that cannot work.
//
// rdb's read and write timeouts bound how long a Get waits for Redis before
// it asks PostgreSQL instead (go-redis waits 5 s unless told otherwise; keep
// them near a query's time). A client without them is refused: a hung Redis
// would hang every read.
func NewRedisProducts(db *pgxpool.Pool, rdb *redis.Client, opts RedisOptions) (*RedisProducts, error) {
	switch {
	case db == nil:
		return nil, fmt.Errorf("product cache: %w: no database", ErrInvalidOptions)
	case rdb == nil:
		return nil, fmt.Errorf("product cache: %w: no Redis client", ErrInvalidOptions)
	case opts.Prefix == "":
		return nil, fmt.Errorf("product cache: %w: no key prefix", ErrInvalidOptions)
	case rdb.Options().ReadTimeout <= 0 || rdb.Options().WriteTimeout <= 0:
		return nil, fmt.Errorf("product cache: %w: a Redis client without read and write timeouts", ErrInvalidOptions)
	}
	if err := checkTTL(opts.TTL); err != nil {
		return nil, err
	}
	return &RedisProducts{db: db, rdb: rdb, opts: opts}, nil
}

// ProductFormat names the JSON a product is cached as, and is part of its
// key. v1 was encoding/json's default, the Go field names (PriceCents); v2
// is shop.Product's json tags (price_cents). A change of format takes a new
// version: the entries the old code wrote stay in Redis until their TTL,
// and during a rolling deploy the old code's servers go on writing them,
// but under keys the new code never reads.
const ProductFormat = "v2"

// Key returns the key the product id is cached under: the prefix, the
// format, the id.
func (p *RedisProducts) Key(id int64) string {
	return p.opts.Prefix + ProductFormat + ":" + strconv.FormatInt(id, 10)
}

// Get returns the product with the given id, from Redis when it holds it, from
// PostgreSQL when not, storing it in Redis for the TTL. Errors are not cached.
//
// Redis can only make Get faster, never make it fail: when Redis is
// unreachable, slower than the client's timeouts, holds something that is not
// this product, or cannot store it, Get answers from PostgreSQL and counts a
// cache error (CacheErrors).
func (p *RedisProducts) Get(ctx context.Context, id int64) (shop.Product, error) {
	if product, ok := p.cached(ctx, id); ok {
		p.hits.Add(1)
		return product, nil
	}
	p.misses.Add(1)
	product, err := loadProduct(ctx, p.db, id)
	if err != nil {
		return shop.Product{}, err
	}
	encoded, err := json.Marshal(product)
	if err != nil {
		return shop.Product{}, fmt.Errorf("product %d: encode for the cache: %w", id, err)
	}
	if err := p.rdb.Set(ctx, p.Key(id), encoded, p.opts.TTL).Err(); err != nil && ctx.Err() == nil {
		p.cacheErrors.Add(1) // the next read misses again
	}
	return product, nil
}

// cached returns the product Redis holds under id's key, if it holds one that
// decodes to exactly that product: one JSON object, its members named as
// shop.Product's json tags, in case too, each once (strictjson).
func (p *RedisProducts) cached(ctx context.Context, id int64) (shop.Product, bool) {
	cached, err := p.rdb.Get(ctx, p.Key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return shop.Product{}, false
	}
	if err != nil {
		if ctx.Err() == nil { // the caller giving up is not Redis failing
			p.cacheErrors.Add(1)
		}
		return shop.Product{}, false
	}
	var product shop.Product
	if err := strictjson.Unmarshal(cached, &product); err != nil || product.ID != id {
		p.cacheErrors.Add(1) // not this product: read it again, and replace it
		return shop.Product{}, false
	}
	return product, true
}

// SetPrice changes the product's price, then deletes it from Redis, so that
// the next read on any app server sees the new price. A price below zero is
// refused with ErrNegativePrice. When the price changed but Redis could not
// delete the cached copy, the error says so: readers may see the old price
// until the TTL.
func (p *RedisProducts) SetPrice(ctx context.Context, id, priceCents int64) error {
	if err := setPrice(ctx, p.db, id, priceCents); err != nil {
		return err
	}
	if err := p.rdb.Del(ctx, p.Key(id)).Err(); err != nil {
		return fmt.Errorf("product %d repriced, but its cached copy stays until the TTL: %w", id, err)
	}
	return nil
}

// HitRatio is the share of Gets served from Redis so far.
func (p *RedisProducts) HitRatio() float64 {
	hits, misses := p.hits.Load(), p.misses.Load()
	if hits+misses == 0 {
		return 0
	}
	return float64(hits) / float64(hits+misses)
}

// CacheErrors is how many times Redis failed a Get so far: unreachable, too
// slow, or holding a value that is not the product.
func (p *RedisProducts) CacheErrors() int64 { return p.cacheErrors.Load() }
