package stampede

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"

	"works-vs-scales/shop"
)

// Dashboard serves the operations team's dashboard, one query at a time.
// (This is the reference answer to lesson 7's exercise.)
type Dashboard struct {
	db      *pgxpool.Pool
	flights singleflight.Group
}

// NewDashboard returns a Dashboard on db, or an error wrapping
// [shop.ErrInvalidConfig] for no database.
func NewDashboard(db *pgxpool.Pool) (*Dashboard, error) {
	if db == nil {
		return nil, fmt.Errorf("dashboard: no database: %w", shop.ErrInvalidConfig)
	}
	return &Dashboard{db: db}, nil
}

// OrdersPerStatus returns how many orders have each status. Callers that ask
// while the query runs share its answer.
func (d *Dashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	done := d.flights.DoChan("orders-per-status", func() (any, error) {
		queryCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return ordersPerStatus(queryCtx, d.db)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("orders per status: %w", context.Cause(ctx))
	case result := <-done:
		if result.Err != nil {
			return nil, result.Err
		}
		return maps.Clone(result.Val.(map[string]int64)), nil
	}
}

func ordersPerStatus(ctx context.Context, db *pgxpool.Pool) (map[string]int64, error) {
	// A sequential scan of orders, grouped.
	const statusQuery = `SELECT status, count(*) FROM orders GROUP BY status`
	rows, err := db.Query(ctx, statusQuery)
	if err != nil {
		return nil, fmt.Errorf("orders per status: %w", err)
	}
	counts := make(map[string]int64)
	var status string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		counts[status] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("orders per status: %w", err)
	}
	return counts, nil
}
