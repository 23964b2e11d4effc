package replicas

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	naive "works-vs-scales/naive/replicas"
	scalable "works-vs-scales/scalable/replicas"
	"works-vs-scales/shop"
)

// Lesson 18's exercise, in exercises/replicas: a user reads their own writes,
// and the others read from the replica. Its check is here, with the proof that
// it fails on the starting point and on the wrong answers people write, and
// passes on the reference; the trainee's run of it, TestExercise18, is in
// exercise_test.go, behind the exercise tag.

const (
	// exercise18Lag is how far behind the replica is during the check: far
	// more than any pause of a loaded machine between a write and a read, so
	// a read from the replica misses the write, every time.
	exercise18Lag = time.Minute
	// exercise18Users place an order each at once, then list their orders at
	// once, through one Store.
	exercise18Users = 10
	// exercise18Later is how long after their order the first of them lists
	// their orders again, the replica still behind: a Store that sends a
	// user's reads to the primary for a while after a write, rather than
	// until the replica has replayed it, has sent them back to the replica.
	exercise18Later = 3 * time.Second
)

// The URLs of the copies of the shop on the primary and on the replica that a
// fixture test made, for the child it runs checkExercise18 in (see
// TestExercise18CheckFailsOnAnUnguardedMap).
const (
	exercise18PrimaryEnv = "WVS_EXERCISE18_PRIMARY"
	exercise18ReplicaEnv = "WVS_EXERCISE18_REPLICA"
)

// exercise18Pools returns the primary and the replica of a fresh copy of the
// shop, the replica exercise18Lag behind; in a child of a fixture test, the
// parent's.
func exercise18Pools(t *testing.T) (primary, replica *pgxpool.Pool) {
	if !benchkit.InChild(t) {
		if budget, capped, _ := workshopenv.ConnBudget(); capped && os.Getenv(workshopenv.ReplicaURL) == "" {
			// ShopCloneWithReplica would skip, and a skipped check says ok.
			benchkit.CannotCheck(t, "under this room's budget (%s=%d) it needs the room's replica, %s (ask the trainer)",
				workshopenv.MaxConns, budget, workshopenv.ReplicaURL)
		}
		primary, replica = pgtest.ShopCloneWithReplica(t, shop.Small)
		pgtest.SetReplicaDelay(t, exercise18Lag)
		return primary, replica
	}
	open := func(env string) *pgxpool.Pool {
		db, err := pgxpool.New(context.Background(), os.Getenv(env))
		require.NoError(t, err, env)
		t.Cleanup(db.Close)
		return db
	}
	return open(exercise18PrimaryEnv), open(exercise18ReplicaEnv)
}

// checkExercise18 says what is still wrong with an answer to lesson 18's
// exercise, or nil when it is done. With the replica exercise18Lag behind:
// exercise18Users users each place an order through one Store at once, then,
// once all have placed, list their orders at once, and each must see their
// order (under -race, the Store must also keep what it shares between
// requests safe); a user who wrote nothing through the Store must read from
// the replica; and the first user, listing again exercise18Later after their
// order, with the replica still behind, must still see it.
func checkExercise18(t *testing.T, newStore func(primary, replica *pgxpool.Pool) (replicaStore, error)) (err error) {
	defer func() {
		if benchkit.RaceReported(t) {
			err = errors.Join(errors.New("the race detector reported a data race while users placed orders and listed them at once through one Store "+
				"(its report, above, names the memory and the lines): a Store serves many requests at once, each on a goroutine of its own, so what it "+
				"remembers of who wrote, and when, needs a mutex or sync.Map (lesson 18, \"The scales version\")"), err)
		}
	}()
	primary, replica := exercise18Pools(t)
	ctx := context.Background()
	store, err := newStore(primary, replica)
	if err != nil {
		return fmt.Errorf("your New: %w", err)
	}

	// At once: every user places, and only once all have placed does any
	// list, so that every write to what the Store shares is made while
	// the others' are, with nothing between them for the race detector to
	// take as an order.
	orderIDs, placeErrs := make([]int64, exercise18Users), make([]error, exercise18Users)
	lists, listErrs := make([][]shop.Order, exercise18Users), make([]error, exercise18Users)
	var placed, users sync.WaitGroup
	listNow := make(chan struct{})
	placed.Add(exercise18Users)
	for i := range exercise18Users {
		users.Go(func() {
			orderIDs[i], placeErrs[i] = store.PlaceOrder(ctx, userAt(i), 1, 1)
			placed.Done()
			<-listNow
			if placeErrs[i] == nil {
				lists[i], listErrs[i] = store.RecentOrders(ctx, userAt(i), 10)
			}
		})
	}
	placed.Wait()
	firstPlaced := time.Now()
	close(listNow)
	users.Wait()
	for i := range exercise18Users {
		switch {
		case placeErrs[i] != nil:
			return fmt.Errorf("user %d placing an order, with %d others at once: %w", userAt(i), exercise18Users-1, placeErrs[i])
		case listErrs[i] != nil:
			return fmt.Errorf("user %d listing their orders, with %d others at once: %w", userAt(i), exercise18Users-1, listErrs[i])
		case !hasOrder(lists[i], orderIDs[i]):
			return fmt.Errorf("user %d placed order %d and listed their orders at once: the order is missing (the replica is %v behind)",
				userAt(i), orderIDs[i], exercise18Lag)
		}
	}
	if benchkit.RaceReported(t) {
		return nil // the deferred message says what the race detector found
	}

	const behindTheStoresBack = `INSERT INTO orders (user_id, status, created_at) VALUES (200, 'pending', now()) RETURNING id`
	var orderID int64
	if err := primary.QueryRow(ctx, behindTheStoresBack).Scan(&orderID); err != nil {
		return fmt.Errorf("place an order for user 200 on the primary: %w", err)
	}
	orders, err := store.RecentOrders(ctx, 200, 10)
	if err != nil {
		return fmt.Errorf("user 200 listing their orders: %w", err)
	}
	if hasOrder(orders, orderID) {
		return fmt.Errorf("user 200, who placed no order through your Store, read from the primary: keep such reads on the replica")
	}

	time.Sleep(time.Until(firstPlaced.Add(exercise18Later)))
	var replayed bool
	const onTheReplica = `SELECT EXISTS (SELECT FROM orders WHERE id = $1)`
	if err := replica.QueryRow(ctx, onTheReplica, orderIDs[0]).Scan(&replayed); err != nil {
		return fmt.Errorf("look for order %d on the replica: %w", orderIDs[0], err)
	}
	if replayed {
		return fmt.Errorf("the replica replayed order %d within %v, %v behind: the check cannot tell where your Store read from", orderIDs[0], time.Since(firstPlaced), exercise18Lag)
	}
	later := time.Since(firstPlaced).Round(100 * time.Millisecond)
	if orders, err = store.RecentOrders(ctx, userAt(0), 10); err != nil {
		return fmt.Errorf("user %d listing their orders again, %v later: %w", userAt(0), later, err)
	}
	if !hasOrder(orders, orderIDs[0]) {
		return fmt.Errorf("user %d's order %d was in their list at once, and is missing from it %v later, with the replica still behind (the check "+
			"found the order not on it yet): where a user's read goes must depend on what the replica has replayed, not on how long ago the user "+
			"wrote, as a replica can be seconds or minutes behind (lesson 18, \"The scales version\")", userAt(0), orderIDs[0], later)
	}
	t.Logf("%d users at once each read their own order; a user who wrote nothing read from the replica; %v later, the replica still %v behind, the first user still read their order",
		exercise18Users, later, exercise18Lag)
	return nil
}

// userAt is the user of the check's i-th caller at once.
func userAt(i int) int64 { return int64(100 + i) }

func hasOrder(orders []shop.Order, id int64) bool {
	return slices.ContainsFunc(orders, func(o shop.Order) bool { return o.ID == id })
}

func TestExercise18CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return naive.New(p, r) })
	require.ErrorContains(t, err, "the order is missing")
}

func TestExercise18CheckFailsOnReadingEverythingFromThePrimary(t *testing.T) {
	err := checkExercise18(t, func(p, _ *pgxpool.Pool) (replicaStore, error) { return naive.New(p, p) })
	require.ErrorContains(t, err, "keep such reads on the replica")
}

func TestExercise18CheckFailsOnAWindowOfTimeAfterAWrite(t *testing.T) {
	err := checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return newWindowStore(p, r, 500*time.Millisecond) })
	require.ErrorContains(t, err, "was in their list at once, and is missing from it")
	t.Log(err)
}

func TestExercise18CheckFailsOnAnUnguardedMap(t *testing.T) {
	if !benchkit.RaceEnabled {
		t.Skip("a data race is caught by the race detector alone: this runs under go test -race (the lesson's command, and .ci/run's second pass)")
	}
	if !benchkit.InChild(t) {
		// Its data race fails the test binary it runs in: run the check in
		// a child, on this binary's replica and a copy of the shop made here.
		primary, replica := exercise18Pools(t)
		out, err := benchkit.RunInChild(t,
			exercise18PrimaryEnv+"="+benchkit.ChildDatabaseURL(primary), exercise18ReplicaEnv+"="+benchkit.ChildDatabaseURL(replica))
		require.Error(t, err, "the unguarded map passed under -race:\n%s", out)
		switch {
		case strings.Contains(out, "the race detector reported a data race while users placed orders"):
			require.Contains(t, out, "WARNING: DATA RACE")
		case strings.Contains(out, "fatal error: concurrent map writes"):
			// Two writes overlapped, and the map's own check ended the
			// child before the check could say anything: rejected too,
			// the map named by the runtime.
		default:
			t.Fatalf("the child failed, saying neither that the race detector reported a data race nor that the map was written at once:\n%s", out)
		}
		return
	}
	err := checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return newMapStore(p, r) })
	t.Log(err)
	require.ErrorContains(t, err, "data race")
}

func TestExercise18CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return scalable.New(p, r) }))
}

// routedStore places orders on the primary and reads a user's orders from
// the primary or the replica, as its wrong answer says: the naive store on
// each, to read from the one it picks.
type routedStore struct {
	onPrimary, onReplica *naive.Store
	readPrimary          func(userID int64) bool
	wrote                func(userID int64)
}

func newRoutedStore(primary, replica *pgxpool.Pool) (*routedStore, error) {
	onPrimary, err := naive.New(primary, primary)
	if err != nil {
		return nil, err
	}
	onReplica, err := naive.New(primary, replica)
	if err != nil {
		return nil, err
	}
	return &routedStore{onPrimary: onPrimary, onReplica: onReplica}, nil
}

func (s *routedStore) PlaceOrder(ctx context.Context, userID, productID int64, quantity int32) (int64, error) {
	id, err := s.onPrimary.PlaceOrder(ctx, userID, productID, quantity)
	if err == nil {
		s.wrote(userID)
	}
	return id, err
}

func (s *routedStore) RecentOrders(ctx context.Context, userID int64, limit int) ([]shop.Order, error) {
	if s.readPrimary(userID) {
		return s.onPrimary.RecentOrders(ctx, userID, limit)
	}
	return s.onReplica.RecentOrders(ctx, userID, limit)
}

func (s *routedStore) Product(ctx context.Context, id int64) (shop.Product, error) {
	return s.onReplica.Product(ctx, id)
}

// newWindowStore is a wrong answer: a user's reads go to the primary for
// window after their last write, then back to the replica, whether or not it
// has replayed the write. It guesses the lag; the replica's position knows
// it.
func newWindowStore(primary, replica *pgxpool.Pool, window time.Duration) (*routedStore, error) {
	s, err := newRoutedStore(primary, replica)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	wroteAt := make(map[int64]time.Time)
	s.wrote = func(userID int64) {
		mu.Lock()
		defer mu.Unlock()
		wroteAt[userID] = time.Now()
	}
	s.readPrimary = func(userID int64) bool {
		mu.Lock()
		defer mu.Unlock()
		at, ok := wroteAt[userID]
		return ok && time.Since(at) < window
	}
	return s, nil
}

// newMapStore is another: a user who wrote reads from the primary, and who
// wrote is kept in a map[int64]bool that every request reads and writes
// with nothing to guard it, a data race.
func newMapStore(primary, replica *pgxpool.Pool) (*routedStore, error) {
	s, err := newRoutedStore(primary, replica)
	if err != nil {
		return nil, err
	}
	wrote := make(map[int64]bool)
	s.wrote = func(userID int64) { wrote[userID] = true }
	s.readPrimary = func(userID int64) bool { return wrote[userID] }
	return s, nil
}
