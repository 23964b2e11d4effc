package stampede

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Dashboard serves the operations team's dashboard. (Lesson 7's exercise
// starts here.)
type Dashboard struct {
	db *pgxpool.Pool
}

// NewDashboard returns a Dashboard on db, or an error wrapping
// [shop.ErrInvalidConfig] for no database.
func NewDashboard(db *pgxpool.Pool) (*Dashboard, error) {
	if db == nil {
		return nil, fmt.Errorf("dashboard: no database: %w", shop.ErrInvalidConfig)
	}
	return &Dashboard{db: db}, nil
}

// OrdersPerStatus returns how many orders have each status: one query that
// reads every order, for every caller.
func (d *Dashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	return ordersPerStatus(ctx, d.db)
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
