package caching

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	naive "works-vs-scales/naive/caching"
	scalable "works-vs-scales/scalable/caching"
	"works-vs-scales/shop"
)

// Lesson 6's exercise, in exercises/caching. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise06, is in exercise_test.go, behind the exercise tag.

type categoryCounter interface {
	CategoryCounts(ctx context.Context) (map[string]int64, error)
}

// newCatalogFunc makes a catalog on db, as NewCatalog does.
type newCatalogFunc func(db *pgxpool.Pool) (categoryCounter, error)

// menuAge is how old the check lets a cached menu be: the lesson's TTL is a
// minute.
const menuAge = 5 * time.Minute

// checkExercise06 says what is still wrong with an answer to lesson 6's
// exercise, or nil when it is done: the naive counts, at most one query for
// 100 calls one after another and for 50 at once, a copy for each caller, and
// a menu at most menuAge old. db must be a copy of the shop: the check locks
// the products table and adds a product.
//
// The TTL is checked on the fake clock of a testing/synctest bubble, as
// NewCatalog takes no clock: inside the bubble, time.Sleep(menuAge) returns
// at once, and the queries still reach the real database.
func checkExercise06(t *testing.T, db *pgxpool.Pool, newCatalog newCatalogFunc) error {
	works, err := naive.NewCatalog(db)
	if err != nil {
		return fmt.Errorf("the naive catalog to compare with: %w", err)
	}
	want, err := works.CategoryCounts(context.Background())
	if err != nil {
		return fmt.Errorf("the counts to compare with: %w", err)
	}
	catalog, err := newCatalog(db)
	if err != nil {
		return fmt.Errorf("your NewCatalog: %w", err)
	}
	ctx, counts := pgtest.CountQueries(context.Background())
	for call := 1; call <= 100; call++ {
		got, err := catalog.CategoryCounts(ctx)
		if err != nil {
			return fmt.Errorf("your CategoryCounts, call %d: %w", call, err)
		}
		if _, ok := got["not a category"]; ok {
			return fmt.Errorf("call %d returned the map that call %d changed: you returned your cache's own map, so every caller changes everyone's menu; return a copy (maps.Clone)",
				call, call-1)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("call %d: your counts differ from the naive ones (-naive +yours):\n%s", call, diff)
		}
		got["not a category"] = 1 // a caller changing its answer must not change the next one
	}
	if queries := counts.Statements(); queries > 1 {
		return fmt.Errorf("right counts, with %d queries for 100 calls: make it at most 1", queries)
	}
	t.Logf("100 calls one after another, queries: %d (the naive catalog: 100)", counts.Statements())

	if catalog, err = newCatalog(db); err != nil {
		return fmt.Errorf("your NewCatalog: %w", err)
	}
	ctx, counts = pgtest.CountQueries(context.Background())
	results, errs := benchkit.CallWhileLocked(t, db, "products", 50, func() (map[string]int64, error) { return catalog.CategoryCounts(ctx) })
	for i := range results {
		if errs[i] != nil {
			return fmt.Errorf("your CategoryCounts, caller %d of 50 at once: %w", i, errs[i])
		}
		if diff := cmp.Diff(want, results[i]); diff != "" {
			return fmt.Errorf("caller %d of 50 at once: your counts differ from the naive ones (-naive +yours):\n%s", i, diff)
		}
	}
	if queries := counts.Statements(); queries > 1 {
		return fmt.Errorf("%d queries for 50 callers at once, while the first query waited: each caller that found no menu loaded one; "+
			"let one caller load while the others wait for it (a mutex held while it loads, or a cache whose loader runs once), and run this check with -race", queries)
	}
	t.Logf("50 calls at once, while the first query waits, queries: %d", counts.Statements())

	return checkMenuAge(t, db, newCatalog)
}

// checkMenuAge checks, on a fake clock, that a catalog made by newCatalog
// shows a category added after its first call once menuAge has passed.
func checkMenuAge(t *testing.T, db *pgxpool.Pool, newCatalog newCatalogFunc) error {
	// A pool of one connection, opened and connected outside the bubble, so
	// that nothing inside it dials or starts the pool's goroutines.
	cfg := db.Config()
	cfg.MaxConns, cfg.MinConns = 1, 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return fmt.Errorf("a pool for the clock check: %w", err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(context.Background()); err != nil {
		return fmt.Errorf("a pool for the clock check: %w", err)
	}
	var checkErr error
	synctest.Test(t, func(t *testing.T) {
		catalog, err := newCatalog(pool)
		if err != nil {
			checkErr = fmt.Errorf("your NewCatalog: %w", err)
			return
		}
		checkErr = menuAfter(t, pool, catalog)
		// The answer's cache is dropped here; a goroutine of its own (a
		// cache's periodic clean-up) must return before the bubble ends.
		for range 3 {
			synctest.Wait()
			runtime.GC()
			time.Sleep(time.Second)
		}
	})
	return checkErr
}

// menuAfter checks, on the bubble's clock, that a category added after the
// catalog's first call shows within menuAge while the menu is read every 10
// s, as a busy shop reads it; and if it does not, whether it shows after
// menuAge more without a read, to say which it was.
func menuAfter(t *testing.T, db *pgxpool.Pool, catalog categoryCounter) error {
	ctx := context.Background()
	before, err := catalog.CategoryCounts(ctx)
	if err != nil {
		return fmt.Errorf("your CategoryCounts, before a new category: %w", err)
	}
	const addKite = `INSERT INTO products (id, name, category, price_cents)
		SELECT max(id) + 1, 'Exercise 6 kite', 'kites', 1999 FROM products`
	if _, err := db.Exec(ctx, addKite); err != nil {
		return fmt.Errorf("add a product in a new category: %w", err)
	}
	const every = 10 * time.Second
	var after map[string]int64
	for waited := every; waited <= menuAge; waited += every {
		time.Sleep(every) // on the bubble's clock: at once
		if after, err = catalog.CategoryCounts(ctx); err != nil {
			return fmt.Errorf("your CategoryCounts, %v after a new category: %w", waited, err)
		}
	}
	if after["kites"] == 1 {
		t.Logf("a new category shows within %v, the menu read every %v (fake clock)", menuAge, every)
		return nil
	}
	time.Sleep(menuAge) // and nobody reads it meanwhile
	later, err := catalog.CategoryCounts(ctx)
	if err != nil {
		return fmt.Errorf("your CategoryCounts, %v after a new category: %w", 2*menuAge, err)
	}
	if later["kites"] == 1 {
		return fmt.Errorf("%v after a product was added in the new category \"kites\", your menu, read every %v meanwhile, still lacked it; after %v more with no read, it showed: "+
			"your menu expires only when nobody reads it for a while, so a menu read all day is never refreshed; keep each answer for a TTL from when it was loaded, not from when it was last read",
			menuAge, every, menuAge)
	}
	return fmt.Errorf("%v after a product was added in the new category \"kites\", your menu still lacks it (%d categories, %d at the first call), read every %v or not at all: "+
		"your cache keeps an answer longer than %v, or never expires; keep it for a TTL, the promise that a menu may be up to a minute old",
		2*menuAge, len(later), len(before), every, 2*menuAge)
}

func TestExercise06CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise06(t, pgtest.ShopClone(t, shop.Small), func(db *pgxpool.Pool) (categoryCounter, error) { return naive.NewCatalog(db) })
	require.ErrorContains(t, err, "100 queries")
	t.Log(err)
}

func TestExercise06CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		newCatalog newCatalogFunc
		want       string
	}{
		{"the cache's own map", func(db *pgxpool.Pool) (categoryCounter, error) { return &sharedMapCatalog{db: db}, nil }, "you returned your cache's own map"},
		{"no mutex", func(db *pgxpool.Pool) (categoryCounter, error) { return &unlockedCatalog{db: db}, nil }, "50 queries for 50 callers at once"},
		{"never expires", func(db *pgxpool.Pool) (categoryCounter, error) { return &foreverCatalog{db: db}, nil }, "or never expires"},
		{"loaded outside the lock", func(db *pgxpool.Pool) (categoryCounter, error) { return &readLockedCatalog{db: db}, nil }, "50 queries for 50 callers at once"},
		{"expiry restarted at every read", func(db *pgxpool.Pool) (categoryCounter, error) { return &slidingCatalog{db: db}, nil }, "your menu expires only when nobody reads it for a while"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if benchkit.RaceEnabled && tc.name == "no mutex" && os.Getenv(raceChildEnv) == "" {
				// Its data race would fail this very test binary: the race
				// detector's report is the verdict, so read it from a child.
				unlockedCacheUnderRace(t)
				return
			}
			err := checkExercise06(t, pgtest.ShopClone(t, shop.Small), tc.newCatalog)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

// raceChildEnv, set, tells a test binary built with -race that it is the
// child unlockedCacheUnderRace started.
const raceChildEnv = "WVS_EXERCISE06_RACE_CHILD"

// unlockedCacheUnderRace runs the "no mutex" wrong answer in a child of this
// -race binary, on the same server, and checks that the race detector and the
// check both report it.
func unlockedCacheUnderRace(t *testing.T) {
	child := exec.Command(os.Args[0], "-test.run=^TestExercise06CheckFailsOnWrongAnswers$/^no_mutex$", "-test.v", "-test.count=1")
	child.Env = append(os.Environ(), raceChildEnv+"=1", workshopenv.DatabaseURL+"="+pgtest.ServerURL(t))
	out, err := child.CombinedOutput()
	require.Error(t, err, "the cache without a mutex passed under -race:\n%s", out)
	require.Contains(t, string(out), "WARNING: DATA RACE")
	require.Contains(t, string(out), "50 queries for 50 callers at once")
}

func TestExercise06CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise06(t, pgtest.ShopClone(t, shop.Small), func(db *pgxpool.Pool) (categoryCounter, error) { return scalable.NewCatalog(db) }))
}

// categoryCountsQuery is the menu's query, as the naive catalog runs it.
const categoryCountsQuery = `SELECT category, count(*) FROM products GROUP BY category`

func queryCategoryCounts(ctx context.Context, db *pgxpool.Pool) (map[string]int64, error) {
	rows, err := db.Query(ctx, categoryCountsQuery)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64)
	var category string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&category, &n}, func() error {
		counts[category] = n
		return nil
	})
	return counts, err
}

// sharedMapCatalog is a wrong answer to exercise 6: it hands every caller the
// cache's own map, so one caller's change is everyone's menu.
type sharedMapCatalog struct {
	db       *pgxpool.Pool
	mu       sync.Mutex
	counts   map[string]int64
	loadedAt time.Time
}

func (c *sharedMapCatalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil || time.Since(c.loadedAt) > time.Minute {
		counts, err := queryCategoryCounts(ctx, c.db)
		if err != nil {
			return nil, err
		}
		c.counts, c.loadedAt = counts, time.Now()
	}
	return c.counts, nil
}

// unlockedCatalog is a wrong answer to exercise 6: no mutex, so callers who
// arrive together all find it empty, all query, and race on its fields.
type unlockedCatalog struct {
	db       *pgxpool.Pool
	counts   map[string]int64
	loadedAt time.Time
}

func (c *unlockedCatalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	if c.counts == nil || time.Since(c.loadedAt) > time.Minute {
		counts, err := queryCategoryCounts(ctx, c.db)
		if err != nil {
			return nil, err
		}
		c.counts, c.loadedAt = counts, time.Now()
	}
	return maps.Clone(c.counts), nil
}

// foreverCatalog is a wrong answer to exercise 6: it loads the menu once and
// keeps it for the life of the process.
type foreverCatalog struct {
	db     *pgxpool.Pool
	mu     sync.Mutex
	counts map[string]int64
}

func (c *foreverCatalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		counts, err := queryCategoryCounts(ctx, c.db)
		if err != nil {
			return nil, err
		}
		c.counts = counts
	}
	return maps.Clone(c.counts), nil
}

// The wrong answers below are written from the lesson's "Why it breaks" and
// its costs (staleness, a bound, who else holds the answer), as a trainee
// writes them.

// readLockedCatalog is a wrong answer to exercise 6: a read-write mutex,
// read-locked to look, and locked to store; the query runs between the two,
// under no lock, so every caller who looks before the first has stored runs
// it too.
type readLockedCatalog struct {
	db       *pgxpool.Pool
	mu       sync.RWMutex
	counts   map[string]int64
	loadedAt time.Time
}

func (c *readLockedCatalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	c.mu.RLock()
	counts, fresh := c.counts, time.Since(c.loadedAt) < time.Minute
	c.mu.RUnlock()
	if counts != nil && fresh {
		return maps.Clone(counts), nil
	}
	counts, err := queryCategoryCounts(ctx, c.db)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.counts, c.loadedAt = counts, time.Now()
	c.mu.Unlock()
	return maps.Clone(counts), nil
}

// slidingCatalog is a wrong answer to exercise 6: a TTL of a minute that
// starts again at every read, to keep what is used: a menu read more often
// than once a minute is never loaded again.
type slidingCatalog struct {
	db       *pgxpool.Pool
	mu       sync.Mutex
	counts   map[string]int64
	lastRead time.Time
}

func (c *slidingCatalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil || time.Since(c.lastRead) > time.Minute {
		counts, err := queryCategoryCounts(ctx, c.db)
		if err != nil {
			return nil, err
		}
		c.counts = counts
	}
	c.lastRead = time.Now()
	return maps.Clone(c.counts), nil
}
