package overload

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

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
// user, all at once: a goroutine each, their answers gathered from a channel.
// An unknown user has no orders. More than MaxSummaryUsers users get an error
// wrapping shop.ErrInvalidPage; no database, one wrapping
// shop.ErrInvalidConfig.
//
// Every goroutine sends its answer on an unbuffered channel that only this
// call reads: at the first error (a client that gives up cancels ctx, and
// every query fails) it returns, and the goroutines still to send block on
// the channel for ever, each holding its stack and its answer.
func Summaries(ctx context.Context, db *pgxpool.Pool, userIDs []int64) ([]Summary, error) {
	if db == nil {
		return nil, fmt.Errorf("summaries of %d users: no database: %w", len(userIDs), shop.ErrInvalidConfig)
	}
	if len(userIDs) > MaxSummaryUsers {
		return nil, fmt.Errorf("summaries of %d users, at most %d: %w", len(userIDs), MaxSummaryUsers, shop.ErrInvalidPage)
	}
	type answer struct {
		i       int
		summary Summary
		err     error
	}
	answers := make(chan answer)
	for i, id := range userIDs {
		go func() {
			n, err := orderCount(ctx, db, id)
			answers <- answer{i, Summary{UserID: id, Orders: n}, err}
		}()
	}
	summaries := make([]Summary, len(userIDs))
	for range userIDs {
		a := <-answers
		if a.err != nil {
			return nil, a.err
		}
		summaries[a.i] = a.summary
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
