package caching

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Catalog serves the shop's menu of categories. (Lesson 6's exercise starts
// here.)
type Catalog struct {
	db *pgxpool.Pool
}

// NewCatalog returns a Catalog on db, or an error wrapping
// [shop.ErrInvalidConfig] for no database.
func NewCatalog(db *pgxpool.Pool) (*Catalog, error) {
	if db == nil {
		return nil, fmt.Errorf("catalog: no database: %w", shop.ErrInvalidConfig)
	}
	return &Catalog{db: db}, nil
}

// CategoryCounts returns how many products each category has: one query that
// reads every product, on every call.
func (c *Catalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	return categoryCounts(ctx, c.db)
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
