package caching

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"

	"works-vs-scales/shop"
)

// Catalog serves the shop's menu of categories from a cache. (This is the
// reference answer to lesson 6's exercise.)
type Catalog struct {
	db    *pgxpool.Pool
	cache *otter.Cache[string, map[string]int64]
}

// NewCatalog returns a Catalog on db that reads the categories at most once a
// minute, or an error wrapping [shop.ErrInvalidConfig] for no database.
func NewCatalog(db *pgxpool.Pool) (*Catalog, error) {
	if db == nil {
		return nil, fmt.Errorf("catalog: no database: %w", shop.ErrInvalidConfig)
	}
	return &Catalog{db: db, cache: otter.Must(&otter.Options[string, map[string]int64]{
		MaximumSize:      1,
		ExpiryCalculator: otter.ExpiryWriting[string, map[string]int64](time.Minute),
	})}, nil
}

// CategoryCounts returns how many products each category has, from the cache
// when it holds them: a menu may be a minute behind a new product.
func (c *Catalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	counts, err := c.cache.Get(ctx, "categories", otter.LoaderFunc[string, map[string]int64](
		func(ctx context.Context, _ string) (map[string]int64, error) { return categoryCounts(ctx, c.db) }))
	if err != nil {
		return nil, err
	}
	return maps.Clone(counts), nil // callers may change their map, never the cached one
}

func categoryCounts(ctx context.Context, db *pgxpool.Pool) (map[string]int64, error) {
	// A sequential scan of products, grouped.
	const categoriesQuery = `SELECT category, count(*) FROM products GROUP BY category`
	rows, err := db.Query(ctx, categoriesQuery)
	if err != nil {
		return nil, fmt.Errorf("category counts: %w", err)
	}
	counts := make(map[string]int64)
	var category string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&category, &n}, func() error {
		counts[category] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("category counts: %w", err)
	}
	return counts, nil
}
