package bulkheads

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/rttproxy"
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
// payments are served within 300 ms, and right, and a search gives up at a
// deadline of its own; while the database answers nothing at all, every call
// of every workload ends at a deadline of its own, however long it waits for
// a connection; once it answers again, they are served; and Close closes
// every connection the answer opened. The answer reaches the database
// through a proxy of the check's, which makes it silent.
func checkExercise11(t *testing.T, newShop func(db *pgxpool.Pool) (closingWorkloads, error)) error {
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
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
	benchkit.CheckConns(t, sharedPoolSize) // a room's budget (WORKSHOP_MAX_CONNS)
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
	if err := whileTheDatabaseIsSilent(t, proxy, answer, wantOrders); err != nil {
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
		return fmt.Errorf("a search while search was stuck waited until its caller gave up after %v (%v): give each workload a deadline on the whole call, waiting for a connection included, so that a stuck call fails fast and gives its connection back",
			patience, err)
	}
	t.Logf("a search while search was stuck: failed at its own deadline (%v)", err)
	return nil
}

// silentCalls is how many calls of each workload the check makes at once
// while the database answers nothing: more than any workload's pool should
// hold, so that some wait for a connection.
const silentCalls = 12

// whileTheDatabaseIsSilent checks that, while proxy passes nothing, silentCalls
// calls of each workload at once, made with no deadline of the caller's, end
// at deadlines of the answer's own; and that once it passes bytes again,
// orders are served, and right.
func whileTheDatabaseIsSilent(t *testing.T, proxy *rttproxy.Proxy, answer closingWorkloads, wantOrders []shop.Order) error {
	const patience = 3 * time.Second // the lesson's deadlines are 1 s at most
	t.Cleanup(proxy.Resume)          // before the hang: the pools close even if the check fails while hung
	proxy.Hang()                     // the network drops every packet: no error, no answer
	calls := map[string]func(ctx context.Context) error{
		"RecentOrders": func(ctx context.Context) error { _, err := answer.RecentOrders(ctx, 1); return err },
		"SearchProducts": func(ctx context.Context) error {
			_, err := answer.SearchProducts(ctx, "steel")
			return err
		},
		"UserPayments": func(ctx context.Context) error { _, err := answer.UserPayments(ctx, 1); return err },
	}
	ctx, cancel := context.WithCancel(context.Background()) // the callers set no deadline; the check gives up after patience
	defer cancel()
	var gaveUp atomic.Bool
	waited := make(map[string]int) // calls that were still waiting when the check gave up, by workload
	var mu sync.Mutex
	var done sync.WaitGroup
	for name, call := range calls {
		for range silentCalls {
			done.Go(func() {
				call(ctx) // an error, at some deadline: whose is what counts
				mu.Lock()
				defer mu.Unlock()
				if gaveUp.Load() {
					waited[name]++
				}
			})
		}
	}
	returned := make(chan struct{})
	go func() { done.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(patience):
		gaveUp.Store(true)
		cancel()
		<-returned
	}
	if len(waited) > 0 {
		var still []string
		for _, name := range []string{"RecentOrders", "SearchProducts", "UserPayments"} {
			if waited[name] > 0 {
				still = append(still, fmt.Sprintf("%d of %d %s", waited[name], silentCalls, name))
			}
		}
		return fmt.Errorf("while the database answered nothing (the network dropping every packet), %s calls, made at once with no deadline of the caller's, were still waiting when the check gave up after %v: "+
			"only a deadline on the whole call, waiting for a connection included, gets a caller out; a statement_timeout is the server's, and a server that hears nothing cannot apply it (see \"The scales version\")",
			strings.Join(still, ", "), patience)
	}
	t.Logf("while the database answered nothing: %d calls of each workload at once, each ended at a deadline of its own", silentCalls)

	proxy.Resume()
	// Once bytes pass again, the pool must replace the connections it gave up
	// on. The first calls may meet the answer's own deadline while it dials
	// (500 ms for orders, and a busy machine under -race can take that), so
	// the check asks until a call is served, as a user reloading the page
	// would, and fails only if none is within HangBound.
	served, cancelServed := context.WithTimeout(context.Background(), benchkit.HangBound)
	defer cancelServed()
	var orders []shop.Order
	for tries := 1; ; tries++ {
		var err error
		if orders, err = answer.RecentOrders(served, 1); err == nil {
			if tries > 1 {
				t.Logf("once the database answered again: orders served by call %d", tries)
			}
			break
		}
		select {
		case <-served.Done():
			return fmt.Errorf("orders failed once the database answered again, %d calls in %v: %w: a pool replaces the connections it gave up on", tries, benchkit.HangBound, err)
		case <-time.After(50 * time.Millisecond): // a user's reload, not a hot loop
		}
	}
	if diff := cmp.Diff(wantOrders, orders); diff != "" {
		return fmt.Errorf("once the database answered again, your RecentOrders(1) differs from the naive one (-naive +yours):\n%s", diff)
	}
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
	for _, tc := range []struct {
		name    string
		newShop func(t *testing.T, db *pgxpool.Pool) (closingWorkloads, error)
		want    string
	}{
		{"pools without deadlines", func(t *testing.T, db *pgxpool.Pool) (closingWorkloads, error) {
			return newPoolsWithoutDeadlines(db, nil)
		}, "give each workload a deadline on the whole call"},
		{"pools never closed", func(t *testing.T, db *pgxpool.Pool) (closingWorkloads, error) {
			pools, err := scalable.OpenPools(context.Background(), db.Config(), scalable.DefaultSizes)
			if err != nil {
				return nil, err
			}
			t.Cleanup(pools.Close) // the wrong answer leaks them; the test does not
			served, err := scalable.New(pools, scalable.DefaultTimeouts)
			return unclosingShop{served}, err
		}, "still open after Close"},
		// Each of these two waits for a connection without a bound while
		// search is stuck, and its wait ends as the stuck searches' statements
		// do: whether that is before the check gives up depends on the
		// scheduler, and both ways are a rejection, for the same reason.
		{"a statement timeout", func(t *testing.T, db *pgxpool.Pool) (closingWorkloads, error) {
			return newPoolsWithoutDeadlines(db, map[string]string{"statement_timeout": "200ms"})
		}, "a deadline on the whole call, waiting for a connection included"},
		{"a deadline once connected", func(t *testing.T, db *pgxpool.Pool) (closingWorkloads, error) {
			return newDeadlineOnceConnected(db)
		}, "a deadline on the whole call, waiting for a connection included"},
		{"a deadline on search alone", func(t *testing.T, db *pgxpool.Pool) (closingWorkloads, error) {
			pools, err := newPoolsWithoutDeadlines(db, nil)
			return searchDeadlineOnly{pools}, err
		}, "were still waiting when the check gave up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) { return tc.newShop(t, db) })
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
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
// With settings, each pool's sessions run with them: with a statement_timeout,
// it is a wrong answer of its own, whose only bound is on the statement, which
// neither a wait for a connection nor a database that hears nothing is.
type poolsWithoutDeadlines struct {
	orders, search, payments *naive.Shop
	pools                    []*pgxpool.Pool
}

func newPoolsWithoutDeadlines(db *pgxpool.Pool, settings map[string]string) (*poolsWithoutDeadlines, error) {
	s := &poolsWithoutDeadlines{}
	var shops []*naive.Shop
	for _, size := range []int32{4, 2, 2} {
		cfg := db.Config()
		cfg.MaxConns = size
		for name, value := range settings {
			cfg.ConnConfig.RuntimeParams[name] = value
		}
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

// searchDeadlineOnly is a wrong answer to exercise 11: a pool per workload,
// and a deadline on search, the workload that got stuck; orders and payments
// have none, and wait as long as their callers when the database is the one
// stuck.
type searchDeadlineOnly struct{ *poolsWithoutDeadlines }

func (s searchDeadlineOnly) SearchProducts(ctx context.Context, term string) ([]shop.Product, error) {
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	return s.search.SearchProducts(ctx, term)
}

// deadlineOnceConnected is a wrong answer to exercise 11: a pool per
// workload, and a deadline on each query, set once the call has its
// connection: waiting for the connection, and connecting, have none.
type deadlineOnceConnected struct {
	orders, search, payments *pgxpool.Pool
}

func newDeadlineOnceConnected(db *pgxpool.Pool) (*deadlineOnceConnected, error) {
	var pools []*pgxpool.Pool
	for _, size := range []int32{4, 2, 2} {
		cfg := db.Config()
		cfg.MaxConns = size
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			for _, p := range pools {
				p.Close()
			}
			return nil, err
		}
		pools = append(pools, pool)
	}
	return &deadlineOnceConnected{orders: pools[0], search: pools[1], payments: pools[2]}, nil
}

// onConnection runs do on a connection of pool, with a deadline of timeout
// from when it has the connection.
func onConnection[T any](ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, do func(ctx context.Context, db *pgxpool.Conn) (T, error)) (T, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	defer conn.Release()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return do(ctx, conn)
}

func (s *deadlineOnceConnected) RecentOrders(ctx context.Context, userID int64) ([]shop.Order, error) {
	return onConnection(ctx, s.orders, 500*time.Millisecond, func(ctx context.Context, conn *pgxpool.Conn) ([]shop.Order, error) {
		const recentOrders = `SELECT id, user_id, status, created_at FROM orders
			WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10`
		rows, err := conn.Query(ctx, recentOrders, userID)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Order, error) {
			var o shop.Order
			err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt)
			return o, err
		})
	})
}

func (s *deadlineOnceConnected) SearchProducts(ctx context.Context, term string) ([]shop.Product, error) {
	return onConnection(ctx, s.search, 200*time.Millisecond, func(ctx context.Context, conn *pgxpool.Conn) ([]shop.Product, error) {
		const searchProducts = `SELECT id, name, category, price_cents FROM products
			WHERE name ILIKE '%' || $1 || '%' ESCAPE '\' ORDER BY id LIMIT 20`
		rows, err := conn.Query(ctx, searchProducts, shop.EscapeLike(term))
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowToStructByPos[shop.Product])
	})
}

func (s *deadlineOnceConnected) UserPayments(ctx context.Context, userID int64) ([]shop.Payment, error) {
	return onConnection(ctx, s.payments, time.Second, func(ctx context.Context, conn *pgxpool.Conn) ([]shop.Payment, error) {
		const userPayments = `SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '') FROM payments
			WHERE user_id = $1 ORDER BY id DESC LIMIT 10`
		rows, err := conn.Query(ctx, userPayments, userID)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowToStructByPos[shop.Payment])
	})
}

func (s *deadlineOnceConnected) Close() {
	s.orders.Close()
	s.search.Close()
	s.payments.Close()
}
