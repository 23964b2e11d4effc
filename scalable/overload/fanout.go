package overload

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"works-vs-scales/shop"
)

// MaxSummaryUsers is the most users Summaries takes in one call.
const MaxSummaryUsers = 1000

// Summary is a user's line of a dashboard: how many orders they placed.
type Summary struct {
	UserID int64 `json:"user_id"`
	Orders int64 `json:"orders"`
}

// Summaries returns a summary per user, in the order of userIDs, a query per
// user, as many at once as db's pool has connections. An unknown user has no
// orders. More than MaxSummaryUsers users get an error wrapping
// shop.ErrInvalidPage; no database, one wrapping shop.ErrInvalidConfig.
//
// Each goroutine writes its own element of the result, so none waits for a
// reader; the first error cancels the others' queries, and Summaries returns
// only when every goroutine has: an abandoned request leaves nothing behind.
func Summaries(ctx context.Context, db *pgxpool.Pool, userIDs []int64) ([]Summary, error) {
	if db == nil {
		return nil, fmt.Errorf("summaries of %d users: no database: %w", len(userIDs), shop.ErrInvalidConfig)
	}
	if len(userIDs) > MaxSummaryUsers {
		return nil, fmt.Errorf("summaries of %d users, at most %d: %w", len(userIDs), MaxSummaryUsers, shop.ErrInvalidPage)
	}
	summaries := make([]Summary, len(userIDs))
	g, ctx := errgroup.WithContext(ctx)
	// More goroutines than connections would only wait in the pool's queue.
	g.SetLimit(int(db.Config().MaxConns))
	for i, id := range userIDs {
		g.Go(func() error {
			n, err := orderCount(ctx, db, id)
			summaries[i] = Summary{UserID: id, Orders: n}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return summaries, nil
}

// orderCount returns how many orders the user placed.
func orderCount(ctx context.Context, db *pgxpool.Pool, userID int64) (int64, error) {
	const orderCount = `SELECT count(*) FROM orders WHERE user_id = $1`
	var n int64
	if err := db.QueryRow(ctx, orderCount, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the orders of user %d: %w", userID, err)
	}
	return n, nil
}
