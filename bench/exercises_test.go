package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naivebreaker "works-vs-scales/naive/breaker"
	naivebulkhead "works-vs-scales/naive/bulkhead"
	naivecaching "works-vs-scales/naive/caching"
	naiveexport "works-vs-scales/naive/export"
	naiveindexes "works-vs-scales/naive/indexes"
	naivenestedloops "works-vs-scales/naive/nestedloops"
	naive "works-vs-scales/naive/nplusone"
	naivepagination "works-vs-scales/naive/pagination"
	naiveretry "works-vs-scales/naive/retry"
	naivestampede "works-vs-scales/naive/stampede"
	naivevalidation "works-vs-scales/naive/validation"
	scalablebreaker "works-vs-scales/scalable/breaker"
	scalablebulkhead "works-vs-scales/scalable/bulkhead"
	scalablecaching "works-vs-scales/scalable/caching"
	scalableexport "works-vs-scales/scalable/export"
	scalableindexes "works-vs-scales/scalable/indexes"
	"works-vs-scales/scalable/nestedloops"
	scalable "works-vs-scales/scalable/nplusone"
	"works-vs-scales/scalable/pagination"
	scalableretry "works-vs-scales/scalable/retry"
	scalablestampede "works-vs-scales/scalable/stampede"
	scalablevalidation "works-vs-scales/scalable/validation"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Each lesson's exercise is checked by a check function here. The trainee runs
// it on their answer with -tags exercise (exercise_test.go); the tests below
// prove that each check fails on the starting point and passes on the
// reference answer, so an unsolved exercise never turns the suite red and a
// check that cannot fail never ships.

type listPostsWithCommentsFunc func(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error)

// checkExercise01 says what is still wrong with an answer to lesson 1's
// exercise, or nil when it is done: the naive feed, in at most two round trips.
func checkExercise01(db *pgxpool.Pool, list listPostsWithCommentsFunc) error {
	const perPost = 3
	want, err := naive.ListPostsWithComments(context.Background(), db, feedSize, perPost)
	if err != nil {
		return fmt.Errorf("the naive feed to compare with: %w", err)
	}
	ctx, counts := pgtest.CountQueries(context.Background())
	got, err := list(ctx, db, feedSize, perPost)
	if err != nil {
		return fmt.Errorf("your ListPostsWithComments failed: %w", err)
	}
	if len(got) != len(want) {
		return fmt.Errorf("your feed has %d posts, want %d", len(got), len(want))
	}
	for i := range want {
		if !assert.ObjectsAreEqual(want[i], got[i]) {
			return fmt.Errorf("post %d of the feed (id %d) differs:\n got %+v\nwant %+v", i, want[i].Post.ID, got[i], want[i])
		}
	}
	if trips := counts.RoundTrips(); trips > 2 {
		return fmt.Errorf("right answer, in %d round trips for %d posts: make it at most 2", trips, feedSize)
	}
	return nil
}

func TestExercise01CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise01(pgtest.Shop(t, shop.Small), naive.ListPostsWithComments)
	require.ErrorContains(t, err, fmt.Sprintf("%d round trips", 1+3*feedSize))
}

func TestExercise01CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise01(pgtest.Shop(t, shop.Small), scalable.ListPostsWithComments))
}

type listFeedPageFunc func(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error)

// checkExercise02 says what is still wrong with an answer to lesson 2's
// exercise, or nil when it is done: paging the feed while a post is published
// before every page shows each post exactly once, in feed order. db must be a
// copy of the shop: the check publishes posts.
func checkExercise02(db *pgxpool.Pool, list listFeedPageFunc) error {
	const limit, pages = 20, 10
	ctx := context.Background()
	want, _, err := pagination.ListFeedPage(ctx, db, "", limit*pages)
	if err != nil {
		return fmt.Errorf("the feed to compare with: %w", err)
	}
	var seen []shop.Post
	token := ""
	for page := 1; page <= pages; page++ {
		if page > 1 {
			const publishQuery = `INSERT INTO posts (id, author_id, title, created_at)
				SELECT max(id) + 1, 1, 'Breaking news', now() FROM posts`
			if _, err := db.Exec(ctx, publishQuery); err != nil {
				return fmt.Errorf("publish a post: %w", err)
			}
		}
		got, next, err := list(ctx, db, token, limit)
		if err != nil {
			return fmt.Errorf("your ListFeedPage, page %d: %w", page, err)
		}
		if len(got) != limit || next == "" {
			return fmt.Errorf("page %d has %d posts and next token %q; want %d posts and a token", page, len(got), next, limit)
		}
		seen, token = append(seen, got...), next
	}
	for i := range want {
		if seen[i].ID != want[i].ID {
			return fmt.Errorf("post %d of the feed is %d, want %d: a post was repeated or skipped when another was published", i+1, seen[i].ID, want[i].ID)
		}
	}
	return nil
}

func TestExercise02CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise02(pgtest.ShopClone(t, shop.Small), naivepagination.ListFeedPage)
	require.ErrorContains(t, err, "repeated or skipped")
}

func TestExercise02CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise02(pgtest.ShopClone(t, shop.Small), pagination.ListFeedPage))
}

type commonCustomersFunc func(a, b []shop.User, key func(shop.User) string) []shop.User

// checkExercise05 says what is still wrong with an answer to lesson 5's
// exercise, or nil when it is done: the naive answer, with key run at most
// twice per customer of both lists.
func checkExercise05(common commonCustomersFunc) error {
	a, b := signups(3000)[:2000], signups(3000)[1000:]
	want := naivenestedloops.CommonCustomers(a, b, byEmail)
	key, calls := countingKey(byEmail)
	got := common(a, b, key)
	if !assert.ObjectsAreEqual(want, got) {
		return fmt.Errorf("%d customers in common, want %d (or the same number, in another order)", len(got), len(want))
	}
	if budget := 2 * (len(a) + len(b)); *calls > budget {
		return fmt.Errorf("right answer, with %d calls to key for lists of %d and %d: make it at most %d", *calls, len(a), len(b), budget)
	}
	return nil
}

func TestExercise05CheckFailsOnTheStart(t *testing.T) {
	require.ErrorContains(t, checkExercise05(naivenestedloops.CommonCustomers), "calls to key")
}

func TestExercise05CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise05(nestedloops.CommonCustomers))
}

// checkExercise04 says what is still wrong with an answer to lesson 4's
// exercise, or nil when it is done: the naive bytes, with less than 2 MiB more
// live heap than at the start when the first bytes leave.
func checkExercise04(db *pgxpool.Pool, export exportFunc) error {
	var want bytes.Buffer
	if err := naiveexport.ExportOrderItemsCSV(context.Background(), db, &want); err != nil {
		return fmt.Errorf("the export to compare with: %w", err)
	}
	var got bytes.Buffer
	held, err := heapAtFirstWrite(func(w io.Writer) error {
		return export(context.Background(), db, io.MultiWriter(w, &got))
	})
	if err != nil {
		return fmt.Errorf("your ExportOrderItemsCSV failed: %w", err)
	}
	if !bytes.Equal(want.Bytes(), got.Bytes()) {
		return fmt.Errorf("your export differs from the naive one (%d bytes, want %d)", got.Len(), want.Len())
	}
	const budget = 2 << 20
	if held > budget {
		return fmt.Errorf("right bytes, but %.1f MiB more live heap at the first write: stream the rows to stay under %d MiB",
			float64(held)/(1<<20), budget>>20)
	}
	return nil
}

func TestExercise04CheckFailsOnTheStart(t *testing.T) {
	require.ErrorContains(t, checkExercise04(pgtest.Shop(t, shop.Small), naiveexport.ExportOrderItemsCSV), "live heap")
}

func TestExercise04CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise04(pgtest.Shop(t, shop.Small), scalableexport.ExportOrderItemsCSV))
}

// checkExercise03 says what is still wrong with an answer to lesson 3's
// exercise, or nil when it is done: with the index created, ProductSales reads
// the product's order items and no others, and answers as before. db must be a
// copy of the shop: the check creates the index.
func checkExercise03(db *pgxpool.Pool, createIndex string) error {
	ctx := context.Background()
	productID := int64(shop.Small.Products()) // among the least sold
	want, err := naiveindexes.ProductSales(ctx, db, productID)
	if err != nil {
		return fmt.Errorf("the sales to compare with: %w", err)
	}
	if createIndex == "" {
		return fmt.Errorf("no index yet: write the CREATE INDEX statement in ProductSalesIndex")
	}
	if _, err := db.Exec(ctx, createIndex); err != nil {
		return fmt.Errorf("your index: %w", err)
	}
	if _, err := db.Exec(ctx, "ANALYZE order_items"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	recorded, queries := pgtest.RecordQueries(ctx)
	got, err := naiveindexes.ProductSales(recorded, db, productID)
	if err != nil {
		return fmt.Errorf("sales with your index: %w", err)
	}
	if got != want {
		return fmt.Errorf("sales with your index are %+v, want %+v", got, want)
	}
	plan, err := pgtest.Explain(ctx, db, queries.Queries()[0])
	if err != nil {
		return err
	}
	scans, read := plan.Scans("order_items"), plan.RowsRead("order_items")
	if slices.Contains(scans, "Seq Scan") || read > want.Orders*8 {
		return fmt.Errorf("with your index the plan still does %v of order_items and reads %d rows for a product in %d orders",
			scans, read, want.Orders)
	}
	return nil
}

func TestExercise03CheckFailsOnTheStart(t *testing.T) {
	require.ErrorContains(t, checkExercise03(pgtest.ShopClone(t, shop.Small), ""), "no index yet")
	require.ErrorContains(t, checkExercise03(pgtest.ShopClone(t, shop.Small),
		"CREATE INDEX wrong_idx ON order_items (quantity)"), "Seq Scan")
}

func TestExercise03CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise03(pgtest.ShopClone(t, shop.Small), scalableindexes.ProductSalesIndex))
}

type categoryCounter interface {
	CategoryCounts(ctx context.Context) (map[string]int64, error)
}

// checkExercise06 says what is still wrong with an answer to lesson 6's
// exercise, or nil when it is done: the naive counts, and at most one query for
// 100 calls.
func checkExercise06(db *pgxpool.Pool, newCatalog func(*pgxpool.Pool) categoryCounter) error {
	want, err := naivecaching.NewCatalog(db).CategoryCounts(context.Background())
	if err != nil {
		return fmt.Errorf("the counts to compare with: %w", err)
	}
	catalog := newCatalog(db)
	ctx, counts := pgtest.CountQueries(context.Background())
	for call := 1; call <= 100; call++ {
		got, err := catalog.CategoryCounts(ctx)
		if err != nil {
			return fmt.Errorf("your CategoryCounts, call %d: %w", call, err)
		}
		if !assert.ObjectsAreEqual(want, got) {
			return fmt.Errorf("call %d: your counts are %v, want %v", call, got, want)
		}
		got["not a category"] = 1 // a caller changing its answer must not change the next one
	}
	if queries := counts.Statements(); queries > 1 {
		return fmt.Errorf("right counts, with %d queries for 100 calls: make it at most 1", queries)
	}
	return nil
}

func TestExercise06CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise06(pgtest.Shop(t, shop.Small), func(db *pgxpool.Pool) categoryCounter { return naivecaching.NewCatalog(db) })
	require.ErrorContains(t, err, "100 queries")
}

func TestExercise06CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise06(pgtest.Shop(t, shop.Small), func(db *pgxpool.Pool) categoryCounter { return scalablecaching.NewCatalog(db) }))
}

type statusCounter interface {
	OrdersPerStatus(ctx context.Context) (map[string]int64, error)
}

// checkExercise07 says what is still wrong with an answer to lesson 7's
// exercise, or nil when it is done: 50 callers who arrive while the query runs
// share it, and get the right counts. db must be a copy of the shop: the check
// locks the orders table while the callers arrive.
func checkExercise07(t *testing.T, db *pgxpool.Pool, dashboard statusCounter) error {
	want, err := naivestampede.NewDashboard(db).OrdersPerStatus(context.Background())
	if err != nil {
		return fmt.Errorf("the counts to compare with: %w", err)
	}
	ctx, counts := pgtest.CountQueries(context.Background())
	results, errs := callWhileLocked(t, db, "orders", 50, func() (map[string]int64, error) { return dashboard.OrdersPerStatus(ctx) })
	for i := range results {
		if errs[i] != nil {
			return fmt.Errorf("your OrdersPerStatus, caller %d: %w", i, errs[i])
		}
		if !assert.ObjectsAreEqual(want, results[i]) {
			return fmt.Errorf("caller %d: your counts are %v, want %v", i, results[i], want)
		}
	}
	if queries := counts.Statements(); queries > 1 {
		return fmt.Errorf("right counts, with %d queries for 50 callers at once: make it 1", queries)
	}
	return nil
}

func TestExercise07CheckFailsOnTheStart(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	require.ErrorContains(t, checkExercise07(t, db, naivestampede.NewDashboard(db)), "50 queries")
}

func TestExercise07CheckPassesOnTheAnswer(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, checkExercise07(t, db, scalablestampede.NewDashboard(db)))
}

type paymentsInCurrencyFunc func(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error)

// checkExercise08 says what is still wrong with an answer to lesson 8's
// exercise, or nil when it is done: the euro payments for "EUR", and an error,
// with no payments, for SQL passed as a currency. db must be a copy of the
// shop: the check writes three payments.
func checkExercise08(db *pgxpool.Pool, paymentsIn paymentsInCurrencyFunc) error {
	ctx := context.Background()
	const insertPayments = `INSERT INTO payments (user_id, amount_cents, currency)
		VALUES (1, 1250, 'EUR'), (2, 999, 'USD'), (3, 40000, 'EUR')`
	if _, err := db.Exec(ctx, insertPayments); err != nil {
		return fmt.Errorf("the payments to report on: %w", err)
	}
	euros, err := paymentsIn(ctx, db, "EUR")
	if err != nil {
		return fmt.Errorf("your PaymentsInCurrency(EUR): %w", err)
	}
	if len(euros) != 2 || euros[0].AmountCents != 1250 || euros[1].AmountCents != 40000 {
		return fmt.Errorf("PaymentsInCurrency(EUR) returned %+v, want the payments of 12.50 and 400.00 EUR", euros)
	}
	const hostile = "EUR' OR 'x'='x"
	leaked, err := paymentsIn(ctx, db, hostile)
	if len(leaked) > 0 {
		return fmt.Errorf("PaymentsInCurrency(%q) returned %d payments, %+v: the input became SQL", hostile, len(leaked), leaked)
	}
	if err == nil {
		return fmt.Errorf("PaymentsInCurrency(%q) returned no payments and no error: say what is wrong with the currency", hostile)
	}
	return nil
}

func TestExercise08CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise08(pgtest.ShopClone(t, shop.Small), naivevalidation.PaymentsInCurrency)
	require.ErrorContains(t, err, "returned 3 payments")
}

func TestExercise08CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise08(pgtest.ShopClone(t, shop.Small), scalablevalidation.PaymentsInCurrency))
}

type newPayerFunc func(db *pgxpool.Pool, gw *gateway.Client) payer

// checkExercise09 says what is still wrong with an answer to lesson 9's
// exercise, or nil when it is done: one charge for fifty concurrent calls with
// one key, and one charge for a payment whose first reply was lost. Each part
// runs on a copy of the shop of its own.
func checkExercise09(t *testing.T, newPayments newPayerFunc) error {
	gw := startGateway(t)
	gw.SetFaults(gatewaytest.Faults{Latency: 100 * time.Millisecond})
	payments := newPayments(pgtest.ShopClone(t, shop.Small), gw.Client())
	_, _, _, wait := callTogether(50, func() (shop.Payment, error) {
		return payments.Pay(context.Background(), "double-click", paymentFor(1))
	})
	wait()
	if charges := len(gw.Charges()); charges != 1 {
		return fmt.Errorf("%d charges for 50 concurrent calls with one key: make it 1", charges)
	}

	gw = startGateway(t)
	gw.FailNext(gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true})
	payments = newPayments(pgtest.ShopClone(t, shop.Small), gw.Client())
	payment, err := payments.Pay(context.Background(), "lost-reply", paymentFor(2))
	if err != nil {
		return fmt.Errorf("a payment whose first reply was lost: %w", err)
	}
	if charges := len(gw.Charges()); charges != 1 {
		return fmt.Errorf("%d charges for a payment whose first reply was lost, and was retried: make it 1", charges)
	}
	if payment.ChargeID != gw.Charges()[0].ID {
		return fmt.Errorf("the payment records charge %q, the gateway made %q", payment.ChargeID, gw.Charges()[0].ID)
	}
	return nil
}

func TestExercise09CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) payer { return naiveretry.NewRetryingPayments(db, gw) })
	require.ErrorContains(t, err, "50 charges for 50 concurrent calls")
}

func TestExercise09CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) payer {
		return withFastRetries(t, scalableretry.NewPayments(db, gw))
	}))
}

type newTimedPayerFunc func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) payer

// checkExercise10 says what is still wrong with an answer to lesson 10's
// exercise, or nil when it is done: 20 payments into a hung gateway send it at
// most 10 requests and are all kept, then charged once each by the lesson's
// relay when the gateway is back.
func checkExercise10(t *testing.T, newPayments newTimedPayerFunc) error {
	const payments, maxRequests = 20, 10
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	answer := newPayments(db, gw.Client(), outageTimeout)
	var failed []error
	for i := range payments {
		if _, err := answer.Pay(context.Background(), fmt.Sprintf("k%d", i), paymentFor(i)); err != nil {
			failed = append(failed, err)
		}
	}
	if requests := gw.Requests(); requests > maxRequests {
		return fmt.Errorf("%d requests reached the hung gateway for %d payments: stop calling it after a few failures (at most %d)", requests, payments, maxRequests)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d payments failed while the gateway was down, the first with %v: queue them instead", len(failed), payments, failed[0])
	}
	if statuses := paymentStatuses(t, db); statuses[shop.PaymentQueued] != payments {
		return fmt.Errorf("the payments table holds %v: want %d payments queued", statuses, payments)
	}
	gw.SetFaults(gatewaytest.Faults{})
	relay := scalablebreaker.NewRelay(db, gw.Client(), time.Second, newBreaker(t, 3, time.Minute))
	if _, err := relay.SendQueued(context.Background()); err != nil {
		return fmt.Errorf("the lesson's relay, on your outbox: %w", err)
	}
	if charges, duplicates := len(gw.Charges()), gw.Duplicates(); charges != payments || duplicates != 0 {
		return fmt.Errorf("the relay made %d charges (%d duplicates) for %d queued payments", charges, duplicates, payments)
	}
	return nil
}

func TestExercise10CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) payer {
		return naivebreaker.NewPayments(db, gw, timeout)
	})
	require.ErrorContains(t, err, "60 requests reached the hung gateway")
}

func TestExercise10CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) payer {
		return scalablebreaker.NewPayments(db, gw, timeout, newBreaker(t, 3, time.Minute))
	}))
}

// closingWorkloads is lesson 11's exercise: workloads that close what they open.
type closingWorkloads interface {
	workloads
	Close()
}

// checkExercise11 says what is still wrong with an answer to lesson 11's
// exercise, or nil when it is done: while search is stuck, a user's orders and
// payments are served within 300 ms, and right.
func checkExercise11(t *testing.T, newShop func(db *pgxpool.Pool) (closingWorkloads, error)) error {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	wantOrders, err := naivebulkhead.New(db).RecentOrders(ctx, 1)
	if err != nil {
		return fmt.Errorf("the orders to compare with: %w", err)
	}
	answer, err := newShop(sharedPool(t, db, sharedPoolSize))
	if err != nil {
		return fmt.Errorf("your New: %w", err)
	}
	defer answer.Close()
	stop := stickSearch(t, db, answer, 1)
	defer stop()
	time.Sleep(4 * stragglerGrace) // the stuck searches take what they can

	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	orders, err := answer.RecentOrders(ctx, 1)
	if err != nil {
		return fmt.Errorf("orders failed while search was stuck: %w", err)
	}
	if !assert.ObjectsAreEqual(wantOrders, orders) {
		return fmt.Errorf("your RecentOrders(1) returned %+v, want %+v", orders, wantOrders)
	}
	if _, err := answer.UserPayments(ctx, 1); err != nil {
		return fmt.Errorf("payments failed while search was stuck: %w", err)
	}
	return nil
}

func TestExercise11CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) {
		return naiveClosing{naivebulkhead.New(db)}, nil
	})
	require.ErrorContains(t, err, "orders failed while search was stuck")
}

func TestExercise11CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) {
		pools, err := scalablebulkhead.OpenPools(context.Background(), db.Config(), scalablebulkhead.DefaultSizes)
		if err != nil {
			return nil, err
		}
		return scalableClosing{scalablebulkhead.New(pools, scalablebulkhead.DefaultTimeouts), pools}, nil
	}))
}

// naiveClosing is the naive shop, which opens nothing to close.
type naiveClosing struct{ *naivebulkhead.Shop }

func (naiveClosing) Close() {}

// scalableClosing is the scalable shop with the pools it was given.
type scalableClosing struct {
	*scalablebulkhead.Shop
	pools scalablebulkhead.Pools
}

func (s scalableClosing) Close() { s.pools.Close() }
