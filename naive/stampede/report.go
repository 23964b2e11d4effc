// Package stampede serves an expensive report, the best sellers, the way that
// works first: every request runs the query. When a hundred requests arrive at
// once (the cache just expired, or a dashboard opened by a whole team), the
// database runs the same heavy query a hundred times, and every one of them
// is slower for it.
//
// Compare with works-vs-scales/scalable/stampede, which runs it once for all.
package stampede

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Reports runs the shop's reports.
type Reports struct {
	db *pgxpool.Pool
}

// NewReports returns Reports on db, or an error wrapping
// [shop.ErrInvalidConfig] for no database.
func NewReports(db *pgxpool.Pool) (*Reports, error) {
	if db == nil {
		return nil, fmt.Errorf("reports: no database: %w", shop.ErrInvalidConfig)
	}
	return &Reports{db: db}, nil
}

// BestSellers returns the ten products sold most, by units: one query that
// reads every order item, for every caller.
func (r *Reports) BestSellers(ctx context.Context) ([]shop.BestSeller, error) {
	return bestSellers(ctx, r.db)
}

func bestSellers(ctx context.Context, db *pgxpool.Pool) ([]shop.BestSeller, error) {
	// A sequential scan and a hash aggregate of every order item.
	const bestSellersQuery = `SELECT product_id, sum(quantity) AS units FROM order_items
		GROUP BY product_id ORDER BY units DESC, product_id LIMIT 10`
	rows, err := db.Query(ctx, bestSellersQuery)
	if err != nil {
		return nil, fmt.Errorf("best sellers: %w", err)
	}
	best, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shop.BestSeller])
	if err != nil {
		return nil, fmt.Errorf("best sellers: %w", err)
	}
	return best, nil
}
