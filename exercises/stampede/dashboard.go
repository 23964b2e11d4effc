// Package stampede is lesson 7's exercise: yours to change.
//
// When the operations team opens its dashboard, fifty browsers ask for the
// orders per status at once, and Dashboard below runs the query for each,
// through the naive version. Make concurrent callers share one query, then
// check:
//
//	go test -race -tags exercise -run Exercise07 ./bench/stampede
//
// The check holds the orders table locked while 50 callers arrive, makes the
// caller whose context runs the query leave, then counts the queries,
// compares the answers and changes one caller's map; last, it changes an
// order and asks again: nothing is kept after the shared query.
// One answer is in works-vs-scales/scalable/stampede.
package stampede

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/stampede"
)

// Dashboard serves the operations team's dashboard.
type Dashboard struct {
	naive *naive.Dashboard // replace me
}

// NewDashboard returns a Dashboard on db, or an error wrapping
// shop.ErrInvalidConfig for no database.
func NewDashboard(db *pgxpool.Pool) (*Dashboard, error) {
	d, err := naive.NewDashboard(db)
	if err != nil {
		return nil, err
	}
	return &Dashboard{naive: d}, nil
}

// OrdersPerStatus returns how many orders have each status.
func (d *Dashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	return d.naive.OrdersPerStatus(ctx)
}
