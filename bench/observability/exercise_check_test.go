package observability

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/observability"
	"works-vs-scales/internal/pgtest"
	scalable "works-vs-scales/scalable/observability"
	"works-vs-scales/shop"
)

// Lesson 15's exercise, in exercises/observability: a checkout whose loyalty
// step grows with the user's history. Its check is here, with the proof that it
// fails on the starting point and on the wrong answer the lesson warns about,
// and passes on the answer; the trainee's run of it, TestExercise15, is in
// exercise_test.go, behind the exercise tag.

type loyaltyPointsFunc func(ctx context.Context, db *pgxpool.Pool, userID int64) (int64, error)

// loyaltyStatements is the most statements an answer may run, whatever the
// user's history.
const loyaltyStatements = 2

// checkExercise15 says what is still wrong with an answer to lesson 15's
// exercise, or nil when it is done: for users with no orders up to the
// busiest, the points are right, and the trace of the loyalty step holds at
// most loyaltyStatements statements, counted by the database's side too.
func checkExercise15(t *testing.T, points loyaltyPointsFunc) error {
	tp, recorder := recordingTracing(t)
	db := pgtest.ShopCloneTraced(t, shop.Small, scalable.NewQueryTracer(tp))
	for _, n := range []int{0, 1, 10, 100, 1000} {
		userID, _ := shop.Small.UserWithOrders(n)
		want, err := spentCents(db, userID)
		if err != nil {
			return err
		}
		var got int64
		ctx, counts := pgtest.CountQueries(context.Background())
		spans, err := traced(ctx, tp, recorder, "loyalty points", func(ctx context.Context) error {
			var err error
			got, err = points(ctx, db, userID)
			return err
		})
		if err != nil {
			return fmt.Errorf("loyalty points of user %d (%d orders): %w", userID, n, err)
		}
		if got != want/100 {
			return fmt.Errorf("loyalty points of user %d (%d orders): got %d, want %d (one per whole 100 cents of %d spent)", userID, n, got, want/100, want)
		}
		roundTrips, statements := dbSpans(spans)
		if statements > loyaltyStatements || counts.Statements() > loyaltyStatements {
			return fmt.Errorf("loyalty points of user %d (%d orders) ran %d statements in %d round trips; want at most %d, whatever the history. Its trace:\n%s",
				userID, n, counts.Statements(), roundTrips, loyaltyStatements, head(waterfall(spans), 12))
		}
	}
	return nil
}

// spentCents is what a user spent over all their orders' lines.
func spentCents(db *pgxpool.Pool, userID int64) (int64, error) {
	const spent = `SELECT coalesce(sum(i.quantity * i.price_cents), 0)::bigint
		FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = $1`
	var cents int64
	if err := db.QueryRow(context.Background(), spent, userID).Scan(&cents); err != nil {
		return 0, fmt.Errorf("what user %d spent: %w", userID, err)
	}
	return cents, nil
}

// head returns the first n lines of s, and how many more there were.
func head(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n+1 {
		return s
	}
	return strings.Join(lines[:n], "") + fmt.Sprintf("… and %d more lines\n", len(lines)-n-1)
}

// loyaltyPointsOneQuery is the answer: the database sums every line of every
// order of the user's, in one statement.
func loyaltyPointsOneQuery(ctx context.Context, db *pgxpool.Pool, userID int64) (int64, error) {
	const spentQuery = `SELECT coalesce(sum(i.quantity * i.price_cents), 0)::bigint
		FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = $1`
	var spent int64
	if err := db.QueryRow(ctx, spentQuery, userID).Scan(&spent); err != nil {
		return 0, fmt.Errorf("loyalty points of user %d: %w", userID, err)
	}
	return spent / 100, nil
}

// loyaltyPointsBatch is the wrong answer the lesson warns about: the same
// query per order, sent in one pgx.Batch. The trace shrinks to one span per
// round trip, but the database still runs a statement per order.
func loyaltyPointsBatch(ctx context.Context, db *pgxpool.Pool, userID int64) (int64, error) {
	const ordersQuery = `SELECT id FROM orders WHERE user_id = $1`
	rows, err := db.Query(ctx, ordersQuery, userID)
	if err != nil {
		return 0, fmt.Errorf("loyalty points of user %d: %w", userID, err)
	}
	orderIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("loyalty points of user %d: %w", userID, err)
	}
	const orderTotalQuery = `SELECT coalesce(sum(quantity * price_cents), 0)::bigint FROM order_items WHERE order_id = $1`
	batch := new(pgx.Batch)
	for _, id := range orderIDs {
		batch.Queue(orderTotalQuery, id)
	}
	results := db.SendBatch(ctx, batch)
	defer results.Close()
	var spent int64
	for _, id := range orderIDs {
		var total int64
		if err := results.QueryRow().Scan(&total); err != nil {
			return 0, fmt.Errorf("loyalty points of user %d: total of order %d: %w", userID, id, err)
		}
		spent += total
	}
	return spent / 100, nil
}

func TestExercise15CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise15(t, exercise.LoyaltyPoints)
	require.ErrorContains(t, err, "(10 orders) ran 11 statements in 11 round trips")
}

func TestExercise15CheckFailsOnABatch(t *testing.T) {
	err := checkExercise15(t, loyaltyPointsBatch)
	require.ErrorContains(t, err, "(10 orders) ran 11 statements in 2 round trips")
}

func TestExercise15CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise15(t, loyaltyPointsOneQuery))
}

// TestExercise15StartIsRight: the starting point's points are right, only
// slow, so the check's failure on it is about its cost.
func TestExercise15StartIsRight(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	userID, _ := shop.Small.UserWithOrders(100)
	got, err := exercise.LoyaltyPoints(context.Background(), db, userID)
	require.NoError(t, err)
	want, err := loyaltyPointsOneQuery(context.Background(), db, userID)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// checkoutWaterfall places one order through the exercise's Checkout for a
// user with orders orders, and returns the waterfall of its trace.
func checkoutWaterfall(t *testing.T, orders int) string {
	tp, recorder := recordingTracing(t)
	db := pgtest.ShopCloneTraced(t, shop.Small, scalable.NewQueryTracer(tp))
	checkout, err := exercise.NewCheckout(scalable.Config{
		DB: db, Notifier: notifyNobody, Logger: scalable.NewLogger(sink{}, slog.LevelInfo),
		Tracing: tp, Metrics: scalable.NewMetrics(),
	})
	require.NoError(t, err)
	userID, _ := shop.Small.UserWithOrders(orders)
	spans, err := traced(context.Background(), tp, recorder, "POST /checkout", func(ctx context.Context) error {
		_, _, err := checkout.Checkout(ctx, userID, 3, 1)
		return err
	})
	require.NoError(t, err)
	return fmt.Sprintf("one checkout by user %d, who had %d orders: %d spans\n%s", userID, orders, len(spans), head(waterfall(spans), 20))
}

func TestExercise15CheckoutShowsTheSlowStep(t *testing.T) {
	out := checkoutWaterfall(t, 100)
	require.Contains(t, out, "loyalty points")
	require.Contains(t, out, "SELECT coalesce(sum(quantity * price_cents), 0) FROM orde")
}
