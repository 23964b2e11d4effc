package replicas

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/replicas"
	scalable "works-vs-scales/scalable/replicas"
	"works-vs-scales/shop"
)

// Lesson 18: a real streaming replica, started by the harness (see
// internal/pgtest/replica.go), with its lag set on purpose. The replica and
// its lag are shared by the binary: these tests never run in parallel.

// replicaStore is what both sides of lesson 18 do.
type replicaStore interface {
	PlaceOrder(ctx context.Context, userID, productID int64, quantity int32) (int64, error)
	RecentOrders(ctx context.Context, userID int64, limit int) ([]shop.Order, error)
	Product(ctx context.Context, id int64) (shop.Product, error)
}

// replicaImpl makes one side's Store and says how many of its reads the
// primary answered.
type replicaImpl struct {
	name         string
	new          func(primary, replica *pgxpool.Pool) (replicaStore, error)
	primaryReads func(replicaStore) int64
}

var replicaImpls = []replicaImpl{
	{"naive",
		func(p, r *pgxpool.Pool) (replicaStore, error) { return naive.New(p, r) },
		func(s replicaStore) int64 { return s.(*naive.Store).Stats().PrimaryReads }},
	{"scalable",
		func(p, r *pgxpool.Pool) (replicaStore, error) { return scalable.New(p, r) },
		func(s replicaStore) int64 { return s.(*scalable.Store).Stats().PrimaryReads }},
	{"nowait", // reads from the primary whenever the replica is behind the user's write
		func(p, r *pgxpool.Pool) (replicaStore, error) {
			s, err := scalable.New(p, r)
			if err != nil {
				return nil, err
			}
			return s, s.SetMaxWait(0)
		},
		func(s replicaStore) int64 { return s.(*scalable.Store).Stats().PrimaryReads }},
}

// replicaLags are the apply delays the lesson measures, growing by 10×.
var replicaLags = []time.Duration{0, 10 * time.Millisecond, 100 * time.Millisecond, time.Second}

// placeThenList places an order for user and lists the user's recent orders
// at once, as the next page would: it returns whether the new order was
// missing, and how long the list took.
func placeThenList(ctx context.Context, store replicaStore, userID int64) (stale bool, listed time.Duration, err error) {
	return placeThenListN(ctx, store, userID, 10)
}

// placeThenListN is placeThenList with a list of up to limit orders.
func placeThenListN(ctx context.Context, store replicaStore, userID int64, limit int) (stale bool, listed time.Duration, err error) {
	orderID, err := store.PlaceOrder(ctx, userID, 1, 1)
	if err != nil {
		return false, 0, err
	}
	started := time.Now()
	orders, err := store.RecentOrders(ctx, userID, limit)
	listed = time.Since(started)
	if err != nil {
		return false, 0, err
	}
	return !slices.ContainsFunc(orders, func(o shop.Order) bool { return o.ID == orderID }), listed, nil
}

func TestReplicaStreams(t *testing.T) {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	ctx := context.Background()
	var inRecovery bool
	require.NoError(t, replica.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	require.True(t, inRecovery, "the replica is a standby")
	_, err := replica.Exec(ctx, "INSERT INTO orders (user_id, status, created_at) VALUES (1, 'pending', now())")
	require.ErrorContains(t, err, "read-only transaction", "the replica refuses writes")

	// A minute behind: no pause of a loaded machine between the insert and
	// the checks lasts that long. Setting the delay back to 0 lets the
	// replica replay at once.
	pgtest.SetReplicaDelay(t, time.Minute)
	var orderID int64
	require.NoError(t, primary.QueryRow(ctx, "INSERT INTO orders (user_id, status, created_at) VALUES (1, 'pending', now()) RETURNING id").Scan(&orderID))
	require.Positive(t, pgtest.ReplicaLagBytes(t), "a minute behind, the replica has not replayed the commit")
	var found bool
	require.NoError(t, replica.QueryRow(ctx, "SELECT EXISTS (SELECT FROM orders WHERE id = $1)", orderID).Scan(&found))
	require.False(t, found, "a minute behind, the replica does not have the order yet")

	// With no delay, once the replica has replayed up to where the primary's
	// WAL is now (after the commit), the order is there: an observed state,
	// not a deadline a busy machine might miss.
	pgtest.SetReplicaDelay(t, 0)
	pgtest.WaitForReplica(t)
	require.NoError(t, replica.QueryRow(ctx, "SELECT EXISTS (SELECT FROM orders WHERE id = $1)", orderID).Scan(&found))
	require.True(t, found, "with no delay, the replica replays the order")
}

func TestReplicaStoresAgree(t *testing.T) {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	ctx := context.Background()
	for _, impl := range replicaImpls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			store, err := impl.new(primary, replica)
			require.NoError(t, err)
			want, err := naive.New(primary, primary) // the primary is the truth
			require.NoError(t, err)
			for _, userID := range []int64{1, 2, 100, int64(shop.Small.Users())} {
				wantOrders, err := want.RecentOrders(ctx, userID, 20)
				require.NoError(t, err)
				gotOrders, err := store.RecentOrders(ctx, userID, 20)
				require.NoError(t, err)
				require.Equal(t, wantOrders, gotOrders, "user %d", userID)
			}
			wantProduct, err := want.Product(ctx, 7)
			require.NoError(t, err)
			gotProduct, err := store.Product(ctx, 7)
			require.NoError(t, err)
			require.Equal(t, wantProduct, gotProduct)
		})
	}
}

func TestReplicaStoresRefuseHostileInput(t *testing.T) {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	ctx := context.Background()
	for _, impl := range replicaImpls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			_, err := impl.new(nil, replica)
			require.ErrorIs(t, err, shop.ErrInvalidConfig)
			_, err = impl.new(primary, nil)
			require.ErrorIs(t, err, shop.ErrInvalidConfig)
			store, err := impl.new(primary, replica)
			require.NoError(t, err)
			var before int64
			require.NoError(t, primary.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&before))
			for _, quantity := range []int32{0, -1, -1 << 31} {
				_, err := store.PlaceOrder(ctx, 1, 1, quantity)
				require.ErrorIs(t, err, shop.ErrInvalidQuantity, "quantity %d", quantity)
			}
			for _, userID := range []int64{0, -1, 1 << 62} {
				_, err := store.PlaceOrder(ctx, userID, 1, 1)
				require.ErrorIs(t, err, shop.ErrUserNotFound, "user %d", userID)
			}
			for _, productID := range []int64{0, -1, 1 << 62} {
				_, err := store.PlaceOrder(ctx, 1, productID, 1)
				require.ErrorIs(t, err, shop.ErrProductNotFound, "product %d", productID)
				_, err = store.Product(ctx, productID)
				require.ErrorIs(t, err, shop.ErrProductNotFound, "product %d", productID)
			}
			var after int64
			require.NoError(t, primary.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&after))
			require.Equal(t, before, after, "no order placed")
			for _, limit := range []int{0, -1, 1 << 40} {
				_, err := store.RecentOrders(ctx, 1, limit)
				require.ErrorIs(t, err, shop.ErrInvalidPage, "limit %d", limit)
			}
			for _, userID := range []int64{0, -1, 1 << 62} {
				orders, err := store.RecentOrders(ctx, userID, 10)
				require.NoError(t, err)
				require.Empty(t, orders, "user %d has no orders", userID)
			}
		})
	}
}

// readYourWritesTrials is how many place-then-list pairs a test makes, each
// by a user of its own.
const readYourWritesTrials = 20

func TestReadYourWrites(t *testing.T) {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	ctx := context.Background()
	for _, lag := range replicaLags {
		t.Run(benchkit.Name("lag", lag), func(t *testing.T) {
			pgtest.SetReplicaDelay(t, lag)
			for _, impl := range replicaImpls {
				t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
					store, err := impl.new(primary, replica)
					require.NoError(t, err)
					stale := 0
					for i := range readYourWritesTrials {
						missing, _, err := placeThenList(ctx, store, int64(100+i))
						require.NoError(t, err)
						if missing {
							stale++
						}
					}
					t.Logf("%d of %d reads after a write missed it; %d read from the primary", stale, readYourWritesTrials, impl.primaryReads(store))
					switch {
					case impl.name == "naive":
						if lag > 0 { // more than a place-then-list takes
							require.Positive(t, stale, "the replica is %v behind: the naive store's reads miss writes", lag)
						}
					default:
						require.Zero(t, stale, "a user always reads their own write")
						if lag > scalable.DefaultMaxWait {
							require.Equal(t, int64(readYourWritesTrials), impl.primaryReads(store), "behind by more than the wait, reads go to the primary")
						}
					}
				})
			}
		})
	}
}

func TestReadYourWritesManyUsersAtOnce(t *testing.T) {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	pgtest.SetReplicaDelay(t, 10*time.Millisecond)
	store, err := scalable.New(primary, replica)
	require.NoError(t, err)
	const users, rounds = 16, 5
	var stale atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, users)
	for i := range users {
		wg.Go(func() {
			for range rounds {
				missing, _, err := placeThenList(context.Background(), store, int64(100+i))
				if err != nil {
					errs[i] = err
					return
				}
				if missing {
					stale.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Zero(t, stale.Load(), "%d users at once, each reads their own writes", users)
}

func TestReadYourWritesOneUserFromManyRequests(t *testing.T) {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	pgtest.SetReplicaDelay(t, 10*time.Millisecond)
	store, err := scalable.New(primary, replica)
	require.NoError(t, err)
	// One user in several tabs at once: each tab's list has that tab's order,
	// whichever write the Store remembers last. The list is as long as every
	// order the test places: the seeded orders are older than any of them
	// (created_at DESC), so at most tabs×rounds-1 orders, all the test's own,
	// come before a tab's order, and a list that misses it read stale data,
	// however the tabs interleave.
	const tabs, rounds, user = 8, 5, 100
	var stale atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, tabs)
	start := make(chan struct{})
	for i := range tabs {
		wg.Go(func() {
			<-start
			for range rounds {
				missing, _, err := placeThenListN(context.Background(), store, user, tabs*rounds)
				if err != nil {
					errs[i] = err
					return
				}
				if missing {
					stale.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Zero(t, stale.Load(), "one user's %d requests at once each read their own write", tabs)
}

func TestReadYourWritesWaitEndsWithTheContext(t *testing.T) {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	pgtest.SetReplicaDelay(t, time.Minute)
	store, err := scalable.New(primary, replica)
	require.NoError(t, err)
	require.NoError(t, store.SetMaxWait(time.Hour)) // the caller's deadline comes first
	_, err = store.PlaceOrder(context.Background(), 100, 1, 1)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	orders, err := store.RecentOrders(ctx, 100, 10)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the read waits for the replica no longer than its caller")
	require.Nil(t, orders)
	require.Equal(t, scalable.Stats{}, store.Stats(), "neither server answered")
}

func TestReplicaStoreReadsOthersFromTheReplica(t *testing.T) {
	primary, replica := pgtest.ShopCloneWithReplica(t, shop.Small)
	ctx := context.Background()
	pgtest.SetReplicaDelay(t, time.Second)
	store, err := scalable.New(primary, replica)
	require.NoError(t, err)
	_, err = store.PlaceOrder(ctx, 100, 1, 1)
	require.NoError(t, err)
	for _, userID := range []int64{101, 102, 103} {
		_, err := store.RecentOrders(ctx, userID, 10)
		require.NoError(t, err)
	}
	_, err = store.Product(ctx, 1)
	require.NoError(t, err)
	stats := store.Stats()
	require.Equal(t, scalable.Stats{ReplicaReads: 4}, stats, "users who wrote nothing, and products, read from the replica")
}

// BenchmarkReadYourWrites places an order and lists the user's orders at
// once, with the replica lag behind: stale-reads-% counts the lists that
// missed the new order; p50-ms and p99-ms are the list's latency, which
// includes the scalable store's wait for the replica.
func BenchmarkReadYourWrites(b *testing.B) {
	primary, replica := pgtest.ShopCloneWithReplica(b, shop.Small)
	ctx := context.Background()
	// The version first, the lag below it, as every benchmark names its
	// levels: measure.sh runs each version in a process of its own by
	// that first level.
	for _, impl := range replicaImpls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, lag := range replicaLags {
				b.Run(benchkit.Name("lag-ms", lag.Milliseconds()), func(b *testing.B) {
					pgtest.SetReplicaDelay(b, lag)
					store, err := impl.new(primary, replica)
					require.NoError(b, err)
					var stale int
					var latencies []time.Duration
					userID := int64(100)
					for b.Loop() {
						missing, listed, err := placeThenList(ctx, store, userID)
						if err != nil {
							b.Fatal(err)
						}
						if missing {
							stale++
						}
						latencies = append(latencies, listed)
						userID = userID%1000 + 100
					}
					b.ReportMetric(100*float64(stale)/float64(b.N), "stale-reads-%")
					b.ReportMetric(100*float64(impl.primaryReads(store))/float64(b.N), "primary-reads-%")
					benchkit.ReportLatencies(b, latencies)
				})
			}
		})
	}
}

// replicaReaders is how many goroutines read at once in BenchmarkReadThroughput,
// each server with a pool of as many connections.
const replicaReaders = 16

// BenchmarkReadThroughput reads users' recent orders from 16 goroutines at
// once, from the primary alone (impl=primary) or spread evenly over the
// primary and the replica (impl=primary+replica). Both servers run on this machine's CPUs: a
// replica adds capacity only when it has CPUs of its own.
func BenchmarkReadThroughput(b *testing.B) {
	primary, replica := pgtest.ShopCloneWithReplica(b, shop.Small)
	var stores []*naive.Store
	for _, db := range []*pgxpool.Pool{primary, replica} {
		pool := benchkit.SharedPool(b, db, replicaReaders)
		store, err := naive.New(pool, pool) // a store that reads from one server
		require.NoError(b, err)
		stores = append(stores, store)
	}
	for _, servers := range []int{1, 2} {
		impl := map[int]string{1: "primary", 2: "primary+replica"}[servers]
		b.Run(benchkit.Name("impl", impl), func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(max(1, replicaReaders/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					i := next.Add(1)
					if _, err := stores[i%int64(servers)].RecentOrders(ctx, i%1000+1, 20); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}
