package bulkheads

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/bulkheads"
	scalable "works-vs-scales/scalable/bulkheads"
	"works-vs-scales/shop"
)

// Lesson 11's exercise, in exercises/bulkheads. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise11, is in exercise_test.go, behind the exercise tag.

// closingWorkloads is lesson 11's exercise: workloads that close what they open.
type closingWorkloads interface {
	workloads
	Close()
}

// checkExercise11 says what is still wrong with an answer to lesson 11's
// exercise, or nil when it is done: while search is stuck, a user's orders and
// payments are served within 300 ms, and right; a search gives up at a
// deadline of its own; and Close closes every connection the answer opened.
func checkExercise11(t *testing.T, newShop func(db *pgxpool.Pool) (closingWorkloads, error)) error {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	works, err := naive.New(db)
	if err != nil {
		return fmt.Errorf("the naive shop to compare with: %w", err)
	}
	wantOrders, err := works.RecentOrders(ctx, 1)
	if err != nil {
		return fmt.Errorf("the orders to compare with: %w", err)
	}
	// The pool handed to New, and every pool opened from its Config, names
	// itself to PostgreSQL, so that the check can count their connections.
	cfg := db.Config()
	cfg.MaxConns = sharedPoolSize
	cfg.ConnConfig.RuntimeParams["application_name"] = fmt.Sprintf("exercise11-%d", time.Now().UnixNano())
	given, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("the pool for your New: %w", err)
	}
	t.Cleanup(given.Close)
	answer, err := newShop(given)
	if err != nil {
		return fmt.Errorf("your New: %w", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			answer.Close()
		}
	})
	if err := whileSearchIsStuck(t, db, answer, wantOrders); err != nil {
		return err
	}
	answer.Close()
	closed = true
	given.Close()
	const openConnections = `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`
	var open int
	for range 40 { // a closed connection's backend exits soon after, not at once
		if err := db.QueryRow(ctx, openConnections, cfg.ConnConfig.RuntimeParams["application_name"]).Scan(&open); err != nil {
			return fmt.Errorf("count the connections left open: %w", err)
		}
		if open == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if open > 0 {
		return fmt.Errorf("%d connections your Shop opened are still open after Close: close every pool you opened", open)
	}
	t.Logf("after Close: no connection of your Shop left open")
	return nil
}

// whileSearchIsStuck checks that answer serves orders and payments, and fails
// a search at its own deadline, while 16 searches wait on a locked products table.
func whileSearchIsStuck(t *testing.T, db *pgxpool.Pool, answer closingWorkloads, wantOrders []shop.Order) error {
	// A shop that has served before: its pools hold connections, so the
	// deadline below is spent on waiting, not on connecting.
	if _, err := answer.RecentOrders(context.Background(), 1); err != nil {
		return fmt.Errorf("your RecentOrders(1), before search got stuck: %w", err)
	}
	if _, err := answer.UserPayments(context.Background(), 1); err != nil {
		return fmt.Errorf("your UserPayments(1), before search got stuck: %w", err)
	}
	stop := stickSearch(t, db, answer, 1)
	defer stop()
	time.Sleep(4 * benchkit.StragglerGrace) // the stuck searches take what they can

	ctx, cancel := context.WithTimeout(context.Background(), requestDeadline)
	defer cancel()
	orders, err := answer.RecentOrders(ctx, 1)
	if err != nil {
		return fmt.Errorf("orders failed while search was stuck: %w", err)
	}
	if diff := cmp.Diff(wantOrders, orders); diff != "" {
		return fmt.Errorf("your RecentOrders(1) differs from the naive one (-naive +yours):\n%s", diff)
	}
	if _, err := answer.UserPayments(ctx, 1); err != nil {
		return fmt.Errorf("payments failed while search was stuck: %w", err)
	}
	t.Logf("while search was stuck: orders and payments served within %v", requestDeadline)

	const patience = 3 * time.Second
	searchCtx, cancelSearch := context.WithTimeout(context.Background(), patience)
	defer cancelSearch()
	_, err = answer.SearchProducts(searchCtx, "steel")
	if err == nil {
		return fmt.Errorf("a search succeeded while the products table was locked")
	}
	if searchCtx.Err() != nil {
		return fmt.Errorf("a search while search was stuck waited until its caller gave up after %v (%v): give each workload a deadline of its own, so that a stuck call fails fast and gives its connection back",
			patience, err)
	}
	t.Logf("a search while search was stuck: failed at its own deadline (%v)", err)
	return nil
}

func TestExercise11CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) {
		served, err := naive.New(db)
		return naiveClosing{served}, err
	})
	require.ErrorContains(t, err, "orders failed while search was stuck")
	t.Log(err)
}

func TestExercise11CheckFailsOnWrongAnswers(t *testing.T) {
	t.Run("pools without deadlines", func(t *testing.T) {
		err := checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) { return newPoolsWithoutDeadlines(db) })
		require.ErrorContains(t, err, "give each workload a deadline of its own")
		t.Log(err)
	})
	t.Run("pools never closed", func(t *testing.T) {
		err := checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) {
			pools, err := scalable.OpenPools(context.Background(), db.Config(), scalable.DefaultSizes)
			if err != nil {
				return nil, err
			}
			t.Cleanup(pools.Close) // the wrong answer leaks them; the test does not
			served, err := scalable.New(pools, scalable.DefaultTimeouts)
			return unclosingShop{served}, err
		})
		require.ErrorContains(t, err, "still open after Close")
		t.Log(err)
	})
}

func TestExercise11CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) {
		pools, err := scalable.OpenPools(context.Background(), db.Config(), scalable.DefaultSizes)
		if err != nil {
			return nil, err
		}
		served, err := scalable.New(pools, scalable.DefaultTimeouts)
		if err != nil {
			pools.Close()
			return nil, err
		}
		return scalableClosing{served, pools}, nil
	}))
}

// naiveClosing is the naive shop, which opens nothing to close.
type naiveClosing struct{ *naive.Shop }

func (naiveClosing) Close() {}

// scalableClosing is the scalable shop with the pools it was given.
type scalableClosing struct {
	*scalable.Shop
	pools scalable.Pools
}

func (s scalableClosing) Close() { s.pools.Close() }

// poolsWithoutDeadlines is a wrong answer to exercise 11: a pool per
// workload, but no deadline, so a stuck search waits as long as its caller.
type poolsWithoutDeadlines struct {
	orders, search, payments *naive.Shop
	pools                    []*pgxpool.Pool
}

func newPoolsWithoutDeadlines(db *pgxpool.Pool) (*poolsWithoutDeadlines, error) {
	s := &poolsWithoutDeadlines{}
	var shops []*naive.Shop
	for _, size := range []int32{4, 2, 2} {
		cfg := db.Config()
		cfg.MaxConns = size
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.pools = append(s.pools, pool)
		served, err := naive.New(pool)
		if err != nil {
			s.Close()
			return nil, err
		}
		shops = append(shops, served)
	}
	s.orders, s.search, s.payments = shops[0], shops[1], shops[2]
	return s, nil
}

func (s *poolsWithoutDeadlines) RecentOrders(ctx context.Context, userID int64) ([]shop.Order, error) {
	return s.orders.RecentOrders(ctx, userID)
}

func (s *poolsWithoutDeadlines) SearchProducts(ctx context.Context, term string) ([]shop.Product, error) {
	return s.search.SearchProducts(ctx, term)
}

func (s *poolsWithoutDeadlines) UserPayments(ctx context.Context, userID int64) ([]shop.Payment, error) {
	return s.payments.UserPayments(ctx, userID)
}

func (s *poolsWithoutDeadlines) Close() {
	for _, pool := range s.pools {
		pool.Close()
	}
}

// unclosingShop is a wrong answer to exercise 11: the lesson's bulkheads,
// whose Close forgets the pools they opened.
type unclosingShop struct{ *scalable.Shop }

func (unclosingShop) Close() {}
