package replicas

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/replicas"
	scalable "works-vs-scales/scalable/replicas"
	"works-vs-scales/shop"
)

// Lesson 18's exercise, in exercises/replicas: a user reads their own writes,
// and the others read from the replica. Its check is here, with the proof that
// it fails on the starting point and on the wrong answer the lesson warns
// about, and passes on the reference; the trainee's run of it, TestExercise18,
// is in exercise_test.go, behind the exercise tag.

// exercise18Lag is how far behind the replica is during the check: far more
// than a place-then-list takes, so a read from the replica misses the write.
const exercise18Lag = time.Second

// checkExercise18 says what is still wrong with an answer to lesson 18's
// exercise, or nil when it is done.
func checkExercise18(t *testing.T, newStore func(primary, replica *pgxpool.Pool) (replicaStore, error)) error {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	pgtest.SetReplicaDelay(t, exercise18Lag)
	ctx := context.Background()
	store, err := newStore(primary, replica)
	if err != nil {
		return fmt.Errorf("your New: %w", err)
	}
	for userID := int64(100); userID < 110; userID++ {
		missing, _, err := placeThenList(ctx, store, userID)
		if err != nil {
			return fmt.Errorf("user %d placing an order and listing their orders: %w", userID, err)
		}
		if missing {
			return fmt.Errorf("user %d placed an order and listed their orders at once: the order is missing (the replica is %v behind)", userID, exercise18Lag)
		}
	}
	// From here the replica is a minute behind, so that it cannot have
	// replayed the next order by the time the Store is asked, however
	// loaded the machine: a Store that reads it from the replica must miss it.
	pgtest.SetReplicaDelay(t, time.Minute)
	const behindTheStoresBack = `INSERT INTO orders (user_id, status, created_at) VALUES (200, 'pending', now()) RETURNING id`
	var orderID int64
	if err := primary.QueryRow(ctx, behindTheStoresBack).Scan(&orderID); err != nil {
		return fmt.Errorf("place an order for user 200 on the primary: %w", err)
	}
	orders, err := store.RecentOrders(ctx, 200, 10)
	if err != nil {
		return fmt.Errorf("user 200 listing their orders: %w", err)
	}
	if slices.ContainsFunc(orders, func(o shop.Order) bool { return o.ID == orderID }) {
		return fmt.Errorf("user 200, who placed no order through your Store, read from the primary: keep such reads on the replica")
	}
	return nil
}

func TestExercise18CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return naive.New(p, r) })
	require.ErrorContains(t, err, "the order is missing")
}

func TestExercise18CheckFailsOnReadingEverythingFromThePrimary(t *testing.T) {
	err := checkExercise18(t, func(p, _ *pgxpool.Pool) (replicaStore, error) { return naive.New(p, p) })
	require.ErrorContains(t, err, "keep such reads on the replica")
}

func TestExercise18CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return scalable.New(p, r) }))
}
