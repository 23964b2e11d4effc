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
	// Prefix starts every key the cache writes, e.g. "product:".
	Prefix string
	// TTL is how long Redis keeps a product after it was read: the most a
	// reader can lag behind a write that does not evict it.
	TTL time.Duration
	// Timeout bounds each call to Redis: past it, a read goes to PostgreSQL.
	Timeout time.Duration
}

// NewRedisProducts returns RedisProducts on db, caching in rdb as opts say.
func NewRedisProducts(db *pgxpool.Pool, rdb *redis.Client, opts RedisOptions) (*RedisProducts, error) {
	return &RedisProducts{db: db, rdb: rdb, opts: opts}, nil
}

func (p *RedisProducts) key(id int64) string { return p.opts.Prefix + strconv.FormatInt(id, 10) }

// Get returns the product with the given id, from Redis when it holds it, from
// PostgreSQL when not, storing it in Redis for the TTL. Errors are not cached.
func (p *RedisProducts) Get(ctx context.Context, id int64) (shop.Product, error) {
	cached, err := p.rdb.Get(ctx, p.key(id)).Bytes()
	switch {
	case err == nil:
		var product shop.Product
		if err := json.Unmarshal(cached, &product); err != nil {
			return shop.Product{}, fmt.Errorf("product %d: cached value %q: %w", id, cached, err)
		}
		p.hits.Add(1)
		return product, nil
	case !errors.Is(err, redis.Nil):
		return shop.Product{}, fmt.Errorf("product %d: read the cache: %w", id, err)
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
	if err := p.rdb.Set(ctx, p.key(id), encoded, p.opts.TTL).Err(); err != nil {
		return shop.Product{}, fmt.Errorf("product %d: fill the cache: %w", id, err)
	}
	return product, nil
}

// SetPrice changes the product's price, then deletes it from Redis, so that
// the next read on any app server sees the new price.
func (p *RedisProducts) SetPrice(ctx context.Context, id, priceCents int64) error {
	if err := setPrice(ctx, p.db, id, priceCents); err != nil {
		return err
	}
	if err := p.rdb.Del(ctx, p.key(id)).Err(); err != nil {
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
