package races

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/races"
	scalable "works-vs-scales/scalable/races"
	"works-vs-scales/shop"
)

// Lesson 12: many users at once. "At once" is made exact the way lessons 7
// and 11 make it: the test locks a table every buyer writes last (orders, or
// order_items), waits until every buyer that holds a connection waits for that
// lock, and only then lets them go. Every buyer has read the stock by then.

const (
	buyersPoolSize = 20 // connections the buyers share: within CI's max_connections of 100
	flashStock     = 5  // units of the product on sale in the tests: fewer than the buyers
	plentyOfStock  = 1_000_000_000
)

type buyFunc func(ctx context.Context, db *pgxpool.Pool, userID, productID int64, quantity int32) (int64, error)

// buyImpl is one way to buy; new returns it counting its retries in retries.
type buyImpl struct {
	name    string
	correct bool
	new     func(retries *atomic.Int64) buyFunc
}

func buyImpls() []buyImpl {
	as := func(buy buyFunc) func(*atomic.Int64) buyFunc {
		return func(*atomic.Int64) buyFunc { return buy }
	}
	return []buyImpl{
		{"naive", false, as(naive.Buy)},
		{"update", true, as(scalable.Buy)},
		{"forupdate", true, as(scalable.BuyForUpdate)},
		{"optimistic", true, retrying(scalable.BuyOptimistic, bestOptimisticPolicy)},
		{"serializable", true, retrying(scalable.BuySerializable, scalable.DefaultPolicy)},
	}
}

// retrying makes a buyImpl's constructor of a version that tries again as
// policy says, counting its retries.
func retrying(buy func(context.Context, *pgxpool.Pool, scalable.Policy, int64, int64, int32) (int64, error), policy scalable.Policy) func(*atomic.Int64) buyFunc {
	return func(retries *atomic.Int64) buyFunc {
		policy := policy
		policy.OnRetry = func(error) { retries.Add(1) }
		return func(ctx context.Context, db *pgxpool.Pool, userID, productID int64, quantity int32) (int64, error) {
			return buy(ctx, db, policy, userID, productID, quantity)
		}
	}
}

// optimisticPolicies are the policies BenchmarkOptimisticPolicyHot and
// BenchmarkOptimisticPolicySpread sweep: how many tries, and the cap on the
// jittered wait between them (from 1 ms, doubling).
var optimisticPolicies = []struct {
	name   string
	policy scalable.Policy
}{
	{"tries3-max10ms", scalable.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}},
	{"tries10-max10ms", scalable.Policy{MaxAttempts: 10, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}},
	{"tries10-max50ms", scalable.Policy{MaxAttempts: 10, BaseDelay: time.Millisecond, MaxDelay: 50 * time.Millisecond}},
	{"tries30-max50ms", scalable.Policy{MaxAttempts: 30, BaseDelay: time.Millisecond, MaxDelay: 50 * time.Millisecond}},
	{"tries30-max200ms", scalable.Policy{MaxAttempts: 30, BaseDelay: time.Millisecond, MaxDelay: 200 * time.Millisecond}},
	{"tries100-max200ms", scalable.Policy{MaxAttempts: 100, BaseDelay: time.Millisecond, MaxDelay: 200 * time.Millisecond}},
}

// bestOptimisticPolicy is the optimistic row of BenchmarkBuyHot and
// BenchmarkBuySpread: of the policies swept, the one that gave up least on
// the hot row and, of those, sold fastest (lessons/results/12-races-policy.bench),
// so that the row shows optimistic locking at its best, not a straw version.
var bestOptimisticPolicy = optimisticPolicies[3].policy // tries30-max50ms

// purchases counts what happened to the purchases of a benchmark, so that it
// reports per purchase, not per operation of many buyers.
type purchases struct {
	tried, sold, gaveUp int
	retries             int64
}

// retriesPerPurchase is the retries a purchase cost, on average.
func (p purchases) retriesPerPurchase() float64 {
	if p.tried == 0 {
		return 0
	}
	return float64(p.retries) / float64(p.tried)
}

// gaveUpPercent is the share of purchases that gave up, in percent.
func (p purchases) gaveUpPercent() float64 {
	if p.tried == 0 {
		return 0
	}
	return 100 * float64(p.gaveUp) / float64(p.tried)
}

type basketFunc func(ctx context.Context, db *pgxpool.Pool, userID int64, items []shop.BasketItem) (int64, error)

func setStock(tb testing.TB, db *pgxpool.Pool, stock int32, productIDs ...int64) {
	tb.Helper()
	const setStock = `UPDATE products SET stock = $2 WHERE id = ANY($1)`
	tag, err := db.Exec(context.Background(), setStock, productIDs, stock)
	require.NoError(tb, err)
	require.Equal(tb, int64(len(productIDs)), tag.RowsAffected(), "products %v", productIDs)
}

// stockOf returns the stock of the products, added up.
func stockOf(tb testing.TB, db *pgxpool.Pool, productIDs ...int64) int64 {
	tb.Helper()
	const stockOf = `SELECT coalesce(sum(stock), 0) FROM products WHERE id = ANY($1)`
	var stock int64
	require.NoError(tb, db.QueryRow(context.Background(), stockOf, productIDs).Scan(&stock))
	return stock
}

func lastOrderID(tb testing.TB, db *pgxpool.Pool) int64 {
	tb.Helper()
	var id int64
	require.NoError(tb, db.QueryRow(context.Background(), "SELECT coalesce(max(id), 0) FROM orders").Scan(&id))
	return id
}

// unitsOrdered returns the units of a product in the orders placed after
// the order afterID.
func unitsOrdered(tb testing.TB, db *pgxpool.Pool, productID, afterID int64) int64 {
	tb.Helper()
	const unitsOrdered = `SELECT coalesce(sum(quantity), 0) FROM order_items WHERE product_id = $1 AND order_id > $2`
	var units int64
	require.NoError(tb, db.QueryRow(context.Background(), unitsOrdered, productID, afterID).Scan(&units))
	return units
}

// atOnce calls fn(0) … fn(n-1) from n goroutines while table is locked in
// mode, releases the lock once waiters queries wait for a lock, and returns
// what each call returned, when all have.
func atOnce(t *testing.T, db *pgxpool.Pool, table, mode string, n, waiters int, fn func(i int) error) []error {
	t.Helper()
	errs := make([]error, n)
	var calls sync.WaitGroup
	t.Cleanup(calls.Wait) // registered before the lock's release: runs after it
	release := benchkit.LockTable(t, db, table, mode)
	for i := range n {
		calls.Go(func() { errs[i] = fn(i) })
	}
	benchkit.WaitForLockWaiters(t, db, waiters)
	release()
	calls.Wait()
	return errs
}

// warmUp calls fn(0) … fn(buyersPoolSize-1) at once, and fails b if any
// fails. Before a benchmark times anything, it opens the pool's connections,
// and each connection's server process loads the tables' catalog entries and
// prepares the statements fn runs, so that the version measured first does
// not pay for them all.
func warmUp(b *testing.B, fn func(i int) error) {
	b.Helper()
	errs := make([]error, buyersPoolSize)
	var calls sync.WaitGroup
	for i := range errs {
		calls.Go(func() { errs[i] = fn(i) })
	}
	calls.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01" // deadlock_detected
}

// TestBuyAgree: one buyer at a time, every version sells the same: the order,
// its line, the stock left, and out of stock when there is not enough.
func TestBuyAgree(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	for i, impl := range buyImpls() {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			product := int64(200 + i)
			setStock(t, db, 10, product)
			buy := impl.new(new(atomic.Int64))
			orderID, err := buy(ctx, db, 7, product, 3)
			require.NoError(t, err)

			const orderQuery = `SELECT o.user_id, o.status, i.line_no, i.product_id, i.quantity, i.price_cents = p.price_cents
				FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
				WHERE o.id = $1`
			var userID, productID int64
			var status string
			var lineNo, quantity int32
			var pricePaid bool
			require.NoError(t, db.QueryRow(ctx, orderQuery, orderID).Scan(&userID, &status, &lineNo, &productID, &quantity, &pricePaid))
			assert.Equal(t, []any{int64(7), "pending", int32(1), product, int32(3), true},
				[]any{userID, status, lineNo, productID, quantity, pricePaid}, "user, status, line, product, quantity, price as listed")
			assert.Equal(t, int64(7), stockOf(t, db, product))

			_, err = buy(ctx, db, 7, product, 8)
			require.ErrorIs(t, err, shop.ErrOutOfStock)
			assert.Equal(t, int64(7), stockOf(t, db, product), "nothing sold")
		})
	}
}

func TestBuyRefusesHostileInput(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	const product = 300
	setStock(t, db, 5, product)
	before := lastOrderID(t, db)
	cases := []struct {
		name              string
		userID, productID int64
		quantity          int32
		want              error
	}{
		{"zero units", 1, product, 0, shop.ErrInvalidQuantity},
		{"negative units", 1, product, -3, shop.ErrInvalidQuantity},
		{"more units than there are", 1, product, math.MaxInt32, shop.ErrOutOfStock},
		{"no such product", 1, 1 << 62, 1, shop.ErrProductNotFound},
		{"negative product", 1, -1, 1, shop.ErrProductNotFound},
		{"no such user", -1, product, 1, shop.ErrUserNotFound},
	}
	for _, impl := range buyImpls() {
		buy := impl.new(new(atomic.Int64))
		for _, c := range cases {
			_, err := buy(ctx, db, c.userID, c.productID, c.quantity)
			assert.ErrorIs(t, err, c.want, "%s: %s", impl.name, c.name)
		}
	}
	assert.Equal(t, int64(5), stockOf(t, db, product), "nothing sold")
	assert.Equal(t, before, lastOrderID(t, db), "no order placed")
}

// TestManyBuyersAtOnce is the flash sale: 5 units, 10, 100 or 1,000 buyers of
// one unit each (1,000 unless -short), all of whom have read the stock before
// any has finished. The naive version sells more than there is; every other
// sells exactly 5, and the orders agree with the stock.
func TestManyBuyersAtOnce(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	pool := benchkit.SharedPool(t, db, buyersPoolSize)
	ctx := context.Background()
	product := int64(100)
	crowds := []int{10, 100, 1000}
	if testing.Short() {
		crowds = crowds[:2]
	}
	for _, impl := range buyImpls() {
		for _, buyers := range crowds {
			product++
			t.Run(fmt.Sprintf("impl=%s/buyers=%d", impl.name, buyers), func(t *testing.T) {
				setStock(t, db, flashStock, product)
				before := lastOrderID(t, db)
				buy := impl.new(new(atomic.Int64))
				// The first buyer waits to insert its order; the others, each
				// with a connection, wait behind its row lock, or to insert
				// theirs: each has read the stock.
				errs := atOnce(t, db, "orders", "SHARE", buyers, min(buyers, buyersPoolSize), func(i int) error {
					_, err := buy(ctx, pool, int64(i%100+1), product, 1)
					return err
				})
				sold := 0
				for _, err := range errs {
					if err == nil {
						sold++
						continue
					}
					require.ErrorIs(t, err, shop.ErrOutOfStock)
				}
				assert.Equal(t, int64(sold), unitsOrdered(t, db, product, before), "an order line for every unit sold")
				left := stockOf(t, db, product)
				if !impl.correct {
					assert.Greater(t, sold, flashStock, "oversold: %d units sold of %d, %d left in stock", sold, flashStock, left)
					return
				}
				assert.Equal(t, min(flashStock, buyers), sold, "units sold")
				assert.Equal(t, int64(flashStock-sold), left, "the stock agrees with the orders")
			})
		}
	}
}

// optimisticRound has buyers buy one unit each at once, optimistically with
// one try, of one product (hot) or of a product each, every buyer having read
// the stock before any has written it, and counts what happened per purchase.
func optimisticRound(t *testing.T, hot bool, buyers int) purchases {
	db := pgtest.ShopClone(t, shop.Small)
	pool := benchkit.SharedPool(t, db, buyersPoolSize)
	productOf := func(i int) int64 {
		if hot {
			return 1
		}
		return int64(i + 1)
	}
	products := []int64{1}
	if !hot {
		products = make([]int64, buyers)
		for i := range products {
			products[i] = productOf(i)
		}
	}
	setStock(t, db, plentyOfStock, products...)
	var retries atomic.Int64
	buy := retrying(scalable.BuyOptimistic, scalable.Policy{MaxAttempts: 1})(&retries)
	// Every buyer has read the stock and waits: to insert its order (the
	// first writer of each product, behind the lock on orders), or behind
	// the first writer's lock on the product's row.
	errs := atOnce(t, db, "orders", "SHARE", buyers, buyers, func(i int) error {
		_, err := buy(context.Background(), pool, int64(i+1), productOf(i), 1)
		return err
	})
	var done purchases
	for _, err := range errs {
		done.tried++
		if errors.Is(err, scalable.ErrContended) {
			done.gaveUp++
		} else {
			require.NoError(t, err)
			done.sold++
		}
	}
	done.retries = retries.Load()
	return done
}

// TestOptimisticOnAHotRowOneBuyerWinsARound: buyers who all read one row's
// version before any writes it: one wins, every other's write finds the
// version changed. Each round of retries sells one unit; that is why the
// optimistic version cannot win on a hot row.
func TestOptimisticOnAHotRowOneBuyerWinsARound(t *testing.T) {
	done := optimisticRound(t, true, 10)
	assert.Equal(t, purchases{tried: 10, sold: 1, gaveUp: 9}, done)
	assert.Equal(t, 90.0, done.gaveUpPercent(), "gave-up-% with one try")
	assert.Equal(t, 0.0, done.retriesPerPurchase(), "retries/purchase with one try")
}

// TestOptimisticOnSpreadStockNeverRetries: the same crowd buying a product
// each all succeed at the first try: no conflict, so nothing to retry.
func TestOptimisticOnSpreadStockNeverRetries(t *testing.T) {
	done := optimisticRound(t, false, 10)
	assert.Equal(t, purchases{tried: 10, sold: 10}, done)
	assert.Equal(t, 0.0, done.gaveUpPercent())
}

func TestPurchasesArePerPurchase(t *testing.T) {
	p := purchases{tried: 200, sold: 150, gaveUp: 50, retries: 300}
	assert.Equal(t, 1.5, p.retriesPerPurchase())
	assert.Equal(t, 25.0, p.gaveUpPercent())
	assert.Equal(t, 0.0, purchases{}.gaveUpPercent(), "no purchase, no share")
}

// crossedBaskets buys two baskets at once, of the same two products in
// opposite orders, and returns their errors. order_items is locked until both
// wait: each basket has then taken the stock of its first product (or waits
// for it) before either asks for its second.
func crossedBaskets(t *testing.T, buy basketFunc) []error {
	db := pgtest.ShopClone(t, shop.Small)
	const a, b = 401, 402
	setStock(t, db, 100, a, b)
	baskets := [][]shop.BasketItem{
		{{ProductID: a, Quantity: 1}, {ProductID: b, Quantity: 1}},
		{{ProductID: b, Quantity: 1}, {ProductID: a, Quantity: 1}},
	}
	errs := atOnce(t, db, "order_items", "SHARE", 2, 2, func(i int) error {
		_, err := buy(context.Background(), db, int64(i+1), baskets[i])
		return err
	})
	sold := 0
	for _, err := range errs {
		if err == nil {
			sold++
		}
	}
	assert.Equal(t, int64(200-2*sold), stockOf(t, db, a, b), "a failed basket sells nothing")
	return errs
}

func TestBasketsInTheCallersOrderDeadlock(t *testing.T) {
	errs := crossedBaskets(t, naive.BuyBasket)
	deadlocked := 0
	for _, err := range errs {
		if isDeadlock(err) {
			deadlocked++
		} else {
			require.NoError(t, err)
		}
	}
	assert.Equal(t, 1, deadlocked, "PostgreSQL fails one basket of the two: %v", errs)
}

func TestBasketsInIDOrderDoNotDeadlock(t *testing.T) {
	for _, err := range crossedBaskets(t, scalable.BuyBasket) {
		require.NoError(t, err)
	}
}

func TestBasketsAgree(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	impls := []struct {
		name string
		buy  basketFunc
	}{{"naive", naive.BuyBasket}, {"sorted", scalable.BuyBasket}}
	for i, impl := range impls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			a, b := int64(500+2*i), int64(501+2*i)
			setStock(t, db, 10, a, b)
			orderID, err := impl.buy(ctx, db, 3, []shop.BasketItem{{ProductID: b, Quantity: 2}, {ProductID: a, Quantity: 1}})
			require.NoError(t, err)
			assert.Equal(t, int64(1), unitsOrdered(t, db, a, orderID-1))
			assert.Equal(t, int64(2), unitsOrdered(t, db, b, orderID-1))
			assert.Equal(t, int64(17), stockOf(t, db, a, b))

			before := lastOrderID(t, db)
			hostile := []struct {
				name  string
				items []shop.BasketItem
				want  error
			}{
				{"empty basket", nil, shop.ErrInvalidQuantity},
				{"zero units", []shop.BasketItem{{ProductID: a, Quantity: 1}, {ProductID: b, Quantity: 0}}, shop.ErrInvalidQuantity},
				{"the second item out of stock", []shop.BasketItem{{ProductID: a, Quantity: 1}, {ProductID: b, Quantity: 9}}, shop.ErrOutOfStock},
				{"no such product", []shop.BasketItem{{ProductID: a, Quantity: 1}, {ProductID: -7, Quantity: 1}}, shop.ErrProductNotFound},
				{"more than an int32 in all", []shop.BasketItem{{ProductID: a, Quantity: math.MaxInt32}, {ProductID: a, Quantity: math.MaxInt32}}, shop.ErrOutOfStock},
			}
			for _, c := range hostile {
				_, err := impl.buy(ctx, db, 3, c.items)
				assert.ErrorIs(t, err, c.want, c.name)
			}
			_, err = impl.buy(ctx, db, -3, []shop.BasketItem{{ProductID: a, Quantity: 1}})
			assert.ErrorIs(t, err, shop.ErrUserNotFound)
			assert.Equal(t, int64(17), stockOf(t, db, a, b), "nothing sold")
			assert.Equal(t, before, lastOrderID(t, db), "no order placed")
		})
	}
}

// BenchmarkBuyHot: buyers of one product at once, each buying one unit.
func BenchmarkBuyHot(b *testing.B) { benchmarkBuy(b, true, buyImpls(), benchkit.Ladder(1, 100)) }

// BenchmarkBuySpread: buyers of as many products at once, each buying one
// unit of their own.
func BenchmarkBuySpread(b *testing.B) { benchmarkBuy(b, false, buyImpls(), benchkit.Ladder(1, 100)) }

// BenchmarkOptimisticPolicyHot: 100 buyers of one product at once, bought
// optimistically with each of the policies swept.
func BenchmarkOptimisticPolicyHot(b *testing.B) {
	benchmarkBuy(b, true, optimisticImpls(), []int{100})
}

// BenchmarkOptimisticPolicySpread: 100 buyers of a product each, at once,
// bought optimistically with each of the policies swept.
func BenchmarkOptimisticPolicySpread(b *testing.B) {
	benchmarkBuy(b, false, optimisticImpls(), []int{100})
}

// optimisticImpls are the policies swept; with -short, the fewest tries and
// the best only.
func optimisticImpls() []buyImpl {
	impls := make([]buyImpl, len(optimisticPolicies))
	for i, p := range optimisticPolicies {
		impls[i] = buyImpl{p.name, true, retrying(scalable.BuyOptimistic, p.policy)}
	}
	if testing.Short() {
		return []buyImpl{impls[0], impls[4]}
	}
	return impls
}

func benchmarkBuy(b *testing.B, hot bool, impls []buyImpl, crowds []int) {
	db := pgtest.ShopClone(b, shop.Small)
	pool := benchkit.SharedPool(b, db, buyersPoolSize)
	ctx := context.Background()
	const warmProducts = 200 // products 200 to 219, out of the way of the benchmarks'
	warmIDs := make([]int64, buyersPoolSize)
	for i := range warmIDs {
		warmIDs[i] = int64(warmProducts + i)
	}
	setStock(b, db, plentyOfStock, warmIDs...)
	for _, impl := range impls {
		buy := impl.new(new(atomic.Int64))
		warmUp(b, func(i int) error {
			_, err := buy(ctx, pool, int64(i+1), warmIDs[i], 1)
			return err
		})
	}
	for _, impl := range impls {
		for _, buyers := range crowds {
			b.Run(fmt.Sprintf("impl=%s/buyers=%d", impl.name, buyers), func(b *testing.B) {
				productOf := make([]int64, buyers)
				for i := range productOf {
					productOf[i] = 1
					if !hot {
						productOf[i] = int64(i + 1)
					}
				}
				products := productOf[:1]
				if !hot {
					products = productOf
				}
				setStock(b, db, plentyOfStock, products...)
				stockBefore := stockOf(b, db, products...)
				var retries atomic.Int64
				buy := impl.new(&retries)
				var latencies []time.Duration
				var done purchases
				for b.Loop() {
					took, errs := make([]time.Duration, buyers), make([]error, buyers)
					var wg sync.WaitGroup
					for i := range buyers {
						wg.Go(func() {
							start := time.Now()
							_, errs[i] = buy(ctx, pool, int64(i%100+1), productOf[i], 1)
							took[i] = time.Since(start)
						})
					}
					wg.Wait()
					latencies = append(latencies, took...)
					for _, err := range errs {
						done.tried++
						if errors.Is(err, scalable.ErrContended) {
							done.gaveUp++
						} else if err != nil {
							b.Fatal(err)
						} else {
							done.sold++
						}
					}
				}
				elapsed := b.Elapsed()
				done.retries = retries.Load()
				stockAfter := stockOf(b, db, products...)
				benchkit.ReportLatencies(b, latencies)
				b.ReportMetric(float64(int64(done.sold)-(stockBefore-stockAfter))/float64(b.N), "oversold-units/op")
				b.ReportMetric(done.retriesPerPurchase(), "retries/purchase")
				b.ReportMetric(done.gaveUpPercent(), "gave-up-%")
				b.ReportMetric(float64(done.sold)/elapsed.Seconds(), "buys/s")
			})
		}
	}
}

// BenchmarkBuyBasket: buyers at once, each buying a basket of two of four
// popular products, in a random order (the same baskets for both versions).
// A deadlock fails a basket after deadlock_timeout (1 s by default).
func BenchmarkBuyBasket(b *testing.B) {
	db := pgtest.ShopClone(b, shop.Small)
	pool := benchkit.SharedPool(b, db, buyersPoolSize)
	ctx := context.Background()
	popular := []int64{1, 2, 3, 4}
	setStock(b, db, plentyOfStock, popular...)
	impls := []struct {
		name string
		buy  basketFunc
	}{{"naive", naive.BuyBasket}, {"sorted", scalable.BuyBasket}}
	const warmProducts = 200 // products 200 to 220, a basket of two each
	setStock(b, db, plentyOfStock, func() []int64 {
		ids := make([]int64, buyersPoolSize+1)
		for i := range ids {
			ids[i] = int64(warmProducts + i)
		}
		return ids
	}()...)
	for _, impl := range impls {
		warmUp(b, func(i int) error {
			basket := []shop.BasketItem{{ProductID: int64(warmProducts + i), Quantity: 1}, {ProductID: int64(warmProducts + i + 1), Quantity: 1}}
			_, err := impl.buy(ctx, pool, int64(i+1), basket)
			return err
		})
	}
	for _, impl := range impls {
		for _, buyers := range benchkit.Ladder(1, 100) {
			b.Run(fmt.Sprintf("impl=%s/buyers=%d", impl.name, buyers), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, uint64(buyers)))
				var latencies []time.Duration
				deadlocks, baskets := 0, 0
				for b.Loop() {
					took, errs := make([]time.Duration, buyers), make([]error, buyers)
					items := make([][]shop.BasketItem, buyers)
					for i := range items {
						pick := r.Perm(len(popular))
						items[i] = []shop.BasketItem{{ProductID: popular[pick[0]], Quantity: 1}, {ProductID: popular[pick[1]], Quantity: 1}}
					}
					var wg sync.WaitGroup
					for i := range buyers {
						wg.Go(func() {
							start := time.Now()
							_, errs[i] = impl.buy(ctx, pool, int64(i%100+1), items[i])
							took[i] = time.Since(start)
						})
					}
					wg.Wait()
					latencies = append(latencies, took...)
					baskets += buyers
					for _, err := range errs {
						if isDeadlock(err) {
							deadlocks++
						} else if err != nil {
							b.Fatal(err)
						}
					}
				}
				benchkit.ReportLatencies(b, latencies)
				b.ReportMetric(float64(deadlocks)/float64(b.N), "deadlocks/op")
				b.ReportMetric(1000*float64(deadlocks)/float64(baskets), "deadlocks/1000-baskets")
			})
		}
	}
}

// BenchmarkCounter: every goroutine of b.RunParallel counts, one add each
// iteration, at GOMAXPROCS 1, 2 and every CPU. lost-adds-% is what the naive
// counter lost to its race.
func BenchmarkCounter(b *testing.B) {
	type counter interface {
		Add()
		Value() int64
	}
	impls := []struct {
		name string
		new  func() counter
	}{
		{"naive", func() counter { return new(naive.Counter) }},
		{"mutex", func() counter { return new(scalable.MutexCounter) }},
		{"atomic", func() counter { return new(scalable.Counter) }},
		{"sharded", func() counter { return scalable.NewShardedCounter() }},
	}
	procs := []int{1, 2}
	if n := runtime.NumCPU(); n > 2 {
		procs = append(procs, n)
	}
	if testing.Short() {
		procs = procs[:1]
	}
	for _, impl := range impls {
		for _, p := range procs {
			b.Run(fmt.Sprintf("impl=%s/procs=%d", impl.name, p), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(p))
				c := impl.new()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						c.Add()
					}
				})
				b.ReportMetric(100*float64(int64(b.N)-c.Value())/float64(b.N), "lost-adds-%")
			})
		}
	}
}
