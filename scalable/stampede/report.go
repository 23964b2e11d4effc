// Package stampede serves an expensive report, the best sellers, so that any
// number of concurrent requests run its query once: the first starts it, the
// others wait for its answer (golang.org/x/sync/singleflight).
//
// Compare with works-vs-scales/naive/stampede.
package stampede

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"

	"works-vs-scales/shop"
)

// Reports runs the shop's reports, one query at a time per report.
type Reports struct {
	db      *pgxpool.Pool
	timeout time.Duration
	flights singleflight.Group
}

// MaxTimeout is the longest timeout NewReports accepts for a report's query.
const MaxTimeout = time.Hour

// NewReports returns Reports on db. A report's query gets at most timeout,
// whoever is waiting for it. For no database, or a timeout that is not
// positive or is over [MaxTimeout], it returns an error wrapping
// [shop.ErrInvalidConfig].
func NewReports(db *pgxpool.Pool, timeout time.Duration) (*Reports, error) {
	switch {
	case db == nil:
		return nil, fmt.Errorf("reports: no database: %w", shop.ErrInvalidConfig)
	case timeout <= 0 || timeout > MaxTimeout:
		return nil, fmt.Errorf("reports: timeout %v: want more than 0 and at most %v: %w", timeout, MaxTimeout, shop.ErrInvalidConfig)
	}
	return &Reports{db: db, timeout: timeout}, nil
}

// BestSellers returns the ten products sold most, by units. Callers that ask
// while the query runs share its answer, or its error; nothing is kept after:
// the next caller runs the query again.
//
// Two traps are handled. The shared query does not run on the first caller's
// context, but on a copy that cannot be cancelled (with its own timeout), so a
// first caller who gives up does not fail the others. And each caller waits
// on its own context, so it can give up without waiting for the query.
func (r *Reports) BestSellers(ctx context.Context) ([]shop.BestSeller, error) {
	done := r.flights.DoChan("best-sellers", func() (any, error) {
		queryCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		return bestSellers(queryCtx, r.db)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("best sellers: %w", context.Cause(ctx))
	case result := <-done:
		if result.Err != nil {
			return nil, result.Err
		}
		// Every caller gets the same slice: a copy, so none can change another's.
		return append([]shop.BestSeller(nil), result.Val.([]shop.BestSeller)...), nil
	}
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
