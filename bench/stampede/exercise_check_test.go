package stampede

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/singleflight"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/stampede"
	scalable "works-vs-scales/scalable/stampede"
	"works-vs-scales/shop"
)

// Lesson 7's exercise, in exercises/stampede. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise07, is in exercise_test.go, behind the exercise tag.

type statusCounter interface {
	OrdersPerStatus(ctx context.Context) (map[string]int64, error)
}

// checkExercise07 says what is still wrong with an answer to lesson 7's
// exercise, or nil when it is done: 50 callers who arrive while the query runs
// share it, get the right counts, each a map of its own, and still get them
// when the caller whose context runs the query leaves. db must be a copy of
// the shop: the check locks the orders table while the callers arrive.
func checkExercise07(t *testing.T, db *pgxpool.Pool, dashboard statusCounter) error {
	const callers = 50
	works, err := naive.NewDashboard(db)
	if err != nil {
		return fmt.Errorf("the naive dashboard to compare with: %w", err)
	}
	want, err := works.OrdersPerStatus(context.Background())
	if err != nil {
		return fmt.Errorf("the counts to compare with: %w", err)
	}
	counted, counts := pgtest.CountQueries(context.Background())
	// Each caller has a context of its own, which records the queries run on
	// it: the one that records the shared query is the caller whose context
	// it runs on, and that caller leaves while the query waits.
	ctxs, cancels, recordings := make([]context.Context, callers), make([]context.CancelFunc, callers), make([]*pgtest.Recording, callers)
	for i := range callers {
		var ctx context.Context
		ctx, recordings[i] = pgtest.RecordQueries(counted)
		ctxs[i], cancels[i] = context.WithCancel(ctx)
		t.Cleanup(cancels[i])
	}
	var release func()
	t.Cleanup(func() { // registered before the lock is taken
		if release != nil {
			release()
		}
	})
	release = benchkit.LockTable(t, db, "orders", "ACCESS EXCLUSIVE")
	results, errs := make([]map[string]int64, callers), make([]error, callers)
	var arrived, returned sync.WaitGroup
	for i := range callers {
		arrived.Add(1)
		returned.Go(func() {
			arrived.Done()
			results[i], errs[i] = dashboard.OrdersPerStatus(ctxs[i])
		})
	}
	arrived.Wait()
	benchkit.WaitForLockWaiters(t, db, 1)
	time.Sleep(benchkit.StragglerGrace)
	leader := slices.IndexFunc(recordings, func(r *pgtest.Recording) bool { return len(r.Queries()) > 0 })
	if leader >= 0 {
		cancels[leader]()
	}
	release()
	release = nil
	returned.Wait()
	failed := 0
	for i := range results {
		switch {
		case i == leader:
			continue // it left: an error or the counts, both are right
		case errs[i] != nil:
			failed++
		default:
			if diff := cmp.Diff(want, results[i]); diff != "" {
				return fmt.Errorf("caller %d: your counts differ from the naive ones (-naive +yours):\n%s", i, diff)
			}
		}
	}
	if failed > 0 {
		first := 0
		for first == leader || errs[first] == nil {
			first++
		}
		return fmt.Errorf("%d of %d callers failed when the caller whose context ran the shared query left (caller %d: %v): "+
			"the query ran on the first caller's context; run it on context.WithoutCancel(ctx), and let each caller wait on its own (DoChan)",
			failed, callers-1, first, errs[first])
	}
	if queries := counts.Statements(); queries > 1 {
		return fmt.Errorf("right counts, with %d queries for %d callers at once: make it 1", queries, callers)
	}
	other := (leader + 1) % callers
	results[other]["not a status"] = 1
	for i := range results {
		if i != other && i != leader && results[i]["not a status"] == 1 {
			return fmt.Errorf("caller %d changed its map, and caller %d's changed too: callers share one map; give each caller a copy (maps.Clone)", other, i)
		}
	}
	t.Logf("%d callers at once, the first leaving while the query waits: queries: %d, answers: %d", callers, counts.Statements(), callers-1)

	// The flight has landed: the next caller runs the query again.
	const moveAnOrder = `UPDATE orders SET status = 'cancelled' WHERE id = (SELECT min(id) FROM orders WHERE status = 'pending')`
	if _, err := db.Exec(context.Background(), moveAnOrder); err != nil {
		return fmt.Errorf("cancel an order: %w", err)
	}
	now, err := works.OrdersPerStatus(context.Background())
	if err != nil {
		return fmt.Errorf("the counts to compare with: %w", err)
	}
	next, err := dashboard.OrdersPerStatus(context.Background())
	if err != nil {
		return fmt.Errorf("your OrdersPerStatus, after the shared query: %w", err)
	}
	if diff := cmp.Diff(now, next); diff != "" {
		if cmp.Equal(want, next) {
			return fmt.Errorf("after the shared query had finished, an order went from pending to cancelled, and the next caller got the counts from before (-now +yours):\n%s"+
				"your answer keeps the result after its query; callers share a query only while it runs, and the next caller runs it again (see \"The scales version\")", diff)
		}
		return fmt.Errorf("the next caller, after the shared query: your counts differ from the naive ones (-naive +yours):\n%s", diff)
	}
	t.Logf("the next caller, after the shared query had finished: the counts of now")
	return nil
}

func TestExercise07CheckFailsOnTheStart(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	dashboard, err := naive.NewDashboard(db)
	require.NoError(t, err)
	err = checkExercise07(t, db, dashboard)
	require.ErrorContains(t, err, "50 queries")
	t.Log(err)
}

func TestExercise07CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dashboard func(db *pgxpool.Pool) statusCounter
		want      string
	}{
		{"the first caller's context", func(db *pgxpool.Pool) statusCounter { return &firstContextDashboard{db: db} }, "the query ran on the first caller's context"},
		{"one map for every caller", func(db *pgxpool.Pool) statusCounter { return &sharedMapDashboard{db: db} }, "callers share one map"},
		{"a mutex around the query", func(db *pgxpool.Pool) statusCounter { return &mutexDashboard{db: db} }, "right counts, with 50 queries for 50 callers at once"},
		{"the first answer kept", func(db *pgxpool.Pool) statusCounter { return &onceDashboard{db: db} }, "your answer keeps the result after its query"},
		{"a cache in front of the flight", func(db *pgxpool.Pool) statusCounter { return &cachedFlightDashboard{db: db} }, "your answer keeps the result after its query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			err := checkExercise07(t, db, tc.dashboard(db))
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise07CheckPassesOnTheAnswer(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	dashboard, err := scalable.NewDashboard(db)
	require.NoError(t, err)
	require.NoError(t, checkExercise07(t, db, dashboard))
}

// ordersPerStatusQuery is the dashboard's query, as the naive version runs it.
const ordersPerStatusQuery = `SELECT status, count(*) FROM orders GROUP BY status`

func queryOrdersPerStatus(ctx context.Context, db *pgxpool.Pool) (map[string]int64, error) {
	rows, err := db.Query(ctx, ordersPerStatusQuery)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64)
	var status string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		counts[status] = n
		return nil
	})
	return counts, err
}

// firstContextDashboard is a wrong answer to exercise 7: singleflight.Do runs
// the shared query on the first caller's context, so when that caller leaves,
// every caller waiting on the query fails with it.
type firstContextDashboard struct {
	db      *pgxpool.Pool
	flights singleflight.Group
}

func (d *firstContextDashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	counts, err, _ := d.flights.Do("orders-per-status", func() (any, error) { return queryOrdersPerStatus(ctx, d.db) })
	if err != nil {
		return nil, err
	}
	return maps.Clone(counts.(map[string]int64)), nil
}

// sharedMapDashboard is a wrong answer to exercise 7: every caller that
// shared the query gets the same map, so one caller's change is everyone's.
type sharedMapDashboard struct {
	db      *pgxpool.Pool
	flights singleflight.Group
}

func (d *sharedMapDashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	done := d.flights.DoChan("orders-per-status", func() (any, error) {
		return queryOrdersPerStatus(context.WithoutCancel(ctx), d.db)
	})
	select {
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case result := <-done:
		if result.Err != nil {
			return nil, result.Err
		}
		return result.Val.(map[string]int64), nil
	}
}

// The wrong answers below are written from the lesson's "Why it breaks" and
// its two traps, as a trainee writes them.

// mutexDashboard is a wrong answer to exercise 7: a mutex around the query,
// so that callers run it one at a time; each still runs it.
type mutexDashboard struct {
	db *pgxpool.Pool
	mu sync.Mutex
}

func (d *mutexDashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return queryOrdersPerStatus(ctx, d.db)
}

// onceDashboard is a wrong answer to exercise 7: sync.Once runs the query for
// the first caller, on a context that cannot be cancelled, and every caller,
// then and later, gets a copy of its counts, or its error: the dashboard never
// changes again.
type onceDashboard struct {
	db     *pgxpool.Pool
	once   sync.Once
	counts map[string]int64
	err    error
}

func (d *onceDashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	d.once.Do(func() { d.counts, d.err = queryOrdersPerStatus(context.WithoutCancel(ctx), d.db) })
	if d.err != nil {
		return nil, d.err
	}
	return maps.Clone(d.counts), nil
}

// cachedFlightDashboard is a wrong answer to exercise 7: lesson 6's cache in
// front of the shared query, so that callers after it get its answer too, for
// a minute: the dashboard is a minute late, and a failed query's error
// would be served as long.
type cachedFlightDashboard struct {
	db       *pgxpool.Pool
	flights  singleflight.Group
	mu       sync.Mutex
	counts   map[string]int64
	loadedAt time.Time
}

func (d *cachedFlightDashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	d.mu.Lock()
	counts, fresh := d.counts, time.Since(d.loadedAt) < time.Minute
	d.mu.Unlock()
	if counts != nil && fresh {
		return maps.Clone(counts), nil
	}
	done := d.flights.DoChan("orders-per-status", func() (any, error) {
		counts, err := queryOrdersPerStatus(context.WithoutCancel(ctx), d.db)
		if err == nil {
			d.mu.Lock()
			d.counts, d.loadedAt = counts, time.Now()
			d.mu.Unlock()
		}
		return counts, err
	})
	select {
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case result := <-done:
		if result.Err != nil {
			return nil, result.Err
		}
		return maps.Clone(result.Val.(map[string]int64)), nil
	}
}
