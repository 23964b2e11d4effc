package pagination

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/pagination"
	scalable "works-vs-scales/scalable/pagination"
	"works-vs-scales/shop"
)

// Lesson 2: the whole list, OFFSET pages, keyset pages.

// perPage is the page size of lesson 2's tests and benchmarks.
const perPage = 10

// walkOffset reads every page of the user's orders with OFFSET.
func walkOffset(t *testing.T, db *pgxpool.Pool, userID int64, perPage int) (orders []shop.Order, pages int) {
	t.Helper()
	orders = []shop.Order{}
	for page := 1; ; page++ {
		got, err := scalable.ListUserOrdersPage(context.Background(), db, userID, page, perPage)
		require.NoError(t, err)
		if len(got.Orders) == 0 {
			return orders, page - 1
		}
		require.LessOrEqual(t, len(got.Orders), perPage)
		orders = append(orders, got.Orders...)
	}
}

// walkKeyset reads every page of the user's orders with a cursor.
func walkKeyset(t *testing.T, db *pgxpool.Pool, userID int64, perPage int) (orders []shop.Order, pages int) {
	t.Helper()
	orders = []shop.Order{}
	var after *scalable.Cursor
	for {
		got, next, err := scalable.ListUserOrdersAfter(context.Background(), db, userID, after, perPage)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), perPage)
		orders = append(orders, got...)
		if len(got) > 0 {
			pages++
		}
		if next == nil {
			return orders, pages
		}
		after = next
	}
}

func TestPagesWalkToTheWholeList(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	for _, n := range []int{0, 1, 10, 100, 1000} {
		userID, _ := shop.Small.UserWithOrders(n)
		all, err := naive.ListUserOrders(context.Background(), db, userID)
		require.NoError(t, err)
		require.Len(t, all, n)
		for _, size := range []int{perPage, 7} {
			t.Run(fmt.Sprintf("orders=%d/per-page=%d", n, size), func(t *testing.T) {
				wantPages := (n + size - 1) / size

				orders, pages := walkOffset(t, db, userID, size)
				assert.Equal(t, all, orders, "OFFSET pages, end to end, are the whole list: no overlap, no gap")
				assert.Equal(t, wantPages, pages)

				orders, pages = walkKeyset(t, db, userID, size)
				assert.Equal(t, all, orders, "keyset pages, end to end, are the whole list: no overlap, no gap")
				assert.Equal(t, wantPages, pages)
			})
		}
	}
}

func TestOffsetPageCountsOrders(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	userID, _ := shop.Small.UserWithOrders(100)
	page, err := scalable.ListUserOrdersPage(context.Background(), db, userID, 3, perPage)
	require.NoError(t, err)
	assert.Equal(t, int64(100), page.Total)
	assert.Len(t, page.Orders, perPage)
}

// TestPagingJoinedRowsCutsOrders shows the trap in the common example: LIMIT
// on the join pages item rows, so orders are cut at page boundaries and the
// total counts rows of the join (an item each, or one for an order without).
func TestPagingJoinedRowsCutsOrders(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	userID, _ := shop.Small.UserWithOrders(100)
	all, err := naive.ListUserOrders(context.Background(), db, userID)
	require.NoError(t, err)
	itemsOf := make(map[int64]int, len(all))
	joined := 0
	for _, o := range all {
		itemsOf[o.ID] = len(o.Items)
		joined += max(1, len(o.Items))
	}

	cut := 0
	for page := 1; ; page++ {
		got, err := naive.ListUserOrdersPage(context.Background(), db, userID, page, perPage)
		require.NoError(t, err)
		if len(got.Orders) == 0 {
			break
		}
		assert.Equal(t, int64(joined), got.Total, "the total counts rows of the join, not the user's 100 orders")
		for _, o := range got.Orders {
			if len(o.Items) < itemsOf[o.ID] {
				cut++
			}
		}
	}
	assert.Positive(t, cut, "some orders arrive in pieces, split over two pages")
}

// TestOffsetRepeatsAndSkipsWhileOrdersChange pages through a user's orders
// while an order is placed and another deleted between two pages: OFFSET
// shows one order twice and skips another; keyset shows each order once.
func TestOffsetRepeatsAndSkipsWhileOrdersChange(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	userID, _ := shop.Small.UserWithOrders(100)

	offset1, err := scalable.ListUserOrdersPage(ctx, db, userID, 1, perPage)
	require.NoError(t, err)
	keyset1, next, err := scalable.ListUserOrdersAfter(ctx, db, userID, nil, perPage)
	require.NoError(t, err)
	require.Equal(t, offset1.Orders, keyset1)

	// Between pages 1 and 2 the user places an order: every later order moves
	// one place down.
	placeOrder(t, db, userID)
	offset2, err := scalable.ListUserOrdersPage(ctx, db, userID, 2, perPage)
	require.NoError(t, err)
	keyset2, next, err := scalable.ListUserOrdersAfter(ctx, db, userID, next, perPage)
	require.NoError(t, err)

	// Between pages 2 and 3 an order the reader saw on page 1 is deleted:
	// every later order moves one place up.
	deleteOrder(t, db, keyset1[0].ID)
	offset3, err := scalable.ListUserOrdersPage(ctx, db, userID, 3, perPage)
	require.NoError(t, err)
	keyset3, _, err := scalable.ListUserOrdersAfter(ctx, db, userID, next, perPage)
	require.NoError(t, err)

	seenWithOffset := orderIDs(offset1.Orders, offset2.Orders, offset3.Orders)
	seenWithKeyset := orderIDs(keyset1, keyset2, keyset3)
	repeated, skipped := keyset1[perPage-1].ID, keyset2[perPage-1].ID
	assert.Equal(t, 2, seenWithOffset[repeated], "OFFSET shows the last order of page 1 again on page 2")
	assert.Zero(t, seenWithOffset[skipped], "OFFSET never shows the last order of page 2")
	assert.Len(t, seenWithKeyset, 3*perPage, "keyset shows 30 different orders")
	for id, times := range seenWithKeyset {
		assert.Equal(t, 1, times, "keyset shows order %d once", id)
	}
}

// orderIDs counts how many times each order appears in the pages.
func orderIDs(pages ...[]shop.Order) map[int64]int {
	seen := make(map[int64]int)
	for _, page := range pages {
		for _, o := range page {
			seen[o.ID]++
		}
	}
	return seen
}

func deleteOrder(t *testing.T, db *pgxpool.Pool, orderID int64) {
	t.Helper()
	for _, sql := range []string{"DELETE FROM order_items WHERE order_id = $1", "DELETE FROM orders WHERE id = $1"} {
		_, err := db.Exec(context.Background(), sql, orderID)
		require.NoError(t, err)
	}
}

// placeOrder gives the user a new order of one item, placed now.
func placeOrder(t *testing.T, db *pgxpool.Pool, userID int64) int64 {
	t.Helper()
	ctx := context.Background()
	var orderID int64
	err := db.QueryRow(ctx, `INSERT INTO orders (id, user_id, status, created_at)
		SELECT max(id) + 1, $1, 'pending', $2 FROM orders RETURNING id`, userID, time.Now()).Scan(&orderID)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
		SELECT $1, 1, id, 1, price_cents FROM products WHERE id = 1`, orderID)
	require.NoError(t, err)
	return orderID
}

// TestDeepPagesReadRows is the lesson as a fact: the rows each version reads
// from orders, from the plans of the statements it really sent. OFFSET reads
// every row before the page; keyset reads the page and one more; the count
// reads the user's every order.
func TestDeepPagesReadRows(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	const orders = 10_000
	userID, _ := shop.Small.UserWithOrders(orders)
	all, err := naive.ListUserOrders(ctx, db, userID)
	require.NoError(t, err)

	for _, page := range []int{1, 10, 100} {
		t.Run(benchkit.Name("page", page), func(t *testing.T) {
			recorded, offsetQueries := pgtest.RecordQueries(ctx)
			_, err := scalable.ListUserOrdersPage(recorded, db, userID, page, perPage)
			require.NoError(t, err)
			queries := offsetQueries.Queries()
			require.Len(t, queries, 2, "a page and a count")
			assert.Equal(t, int64(page*perPage), rowsRead(t, db, queries[0]), "OFFSET reads the pages before")
			assert.Equal(t, int64(orders), rowsRead(t, db, queries[1]), "COUNT reads every order")

			recorded, noCountQueries := pgtest.RecordQueries(ctx)
			_, err = scalable.ListUserOrdersAtOffset(recorded, db, userID, page, perPage)
			require.NoError(t, err)
			queries = noCountQueries.Queries()
			require.Len(t, queries, 1, "a page, no count")
			assert.Equal(t, int64(page*perPage), rowsRead(t, db, queries[0]), "OFFSET without the count reads the pages before")

			recorded, keysetQueries := pgtest.RecordQueries(ctx)
			_, _, err = scalable.ListUserOrdersAfter(recorded, db, userID, cursorBefore(all, page), perPage)
			require.NoError(t, err)
			queries = keysetQueries.Queries()
			require.Len(t, queries, 1)
			assert.Equal(t, int64(perPage+1), rowsRead(t, db, queries[0]), "keyset reads one page and one row")
		})
	}
}

// cursorBefore returns the cursor where the page (from 1) of the list starts.
func cursorBefore(all []shop.Order, page int) *scalable.Cursor {
	if page == 1 {
		return nil
	}
	last := all[(page-1)*perPage-1]
	return &scalable.Cursor{UserID: last.UserID, CreatedAt: last.CreatedAt, ID: last.ID}
}

// rowsRead runs the recorded query again under EXPLAIN ANALYZE and returns the
// rows its scans of orders produced.
func rowsRead(t *testing.T, db *pgxpool.Pool, q pgtest.Query) int64 {
	t.Helper()
	plan, err := pgtest.Explain(context.Background(), db, q)
	require.NoError(t, err)
	return plan.RowsRead("orders")
}

// pages returns the page numbers a deep-page benchmark reads, from 1 up by
// factors of 10 to the last page of a list of n.
func pages(n int) []int { return benchkit.Ladder(1, n/perPage) }

// BenchmarkUserOrdersPage separates the three costs of a deep page: the
// count (offset against offset-nocount), the rows OFFSET skips (offset-nocount
// as the page deepens), and the page itself (keyset, at any depth).
func BenchmarkUserOrdersPage(b *testing.B) {
	scale := benchkit.Scale()
	db := pgtest.Shop(b, scale)
	ctx := context.Background()
	userID, _ := scale.UserWithOrders(scale.TopOrders)
	all, err := naive.ListUserOrders(ctx, db, userID)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("impl=offset", func(b *testing.B) {
		for _, page := range pages(len(all)) {
			b.Run(benchkit.Name("page", page), func(b *testing.B) {
				ctx, counts := pgtest.CountQueries(ctx)
				for b.Loop() {
					if _, err := scalable.ListUserOrdersPage(ctx, db, userID, page, perPage); err != nil {
						b.Fatal(err)
					}
				}
				benchkit.ReportCounts(b, counts)
			})
		}
	})
	b.Run("impl=offset-nocount", func(b *testing.B) {
		for _, page := range pages(len(all)) {
			b.Run(benchkit.Name("page", page), func(b *testing.B) {
				ctx, counts := pgtest.CountQueries(ctx)
				for b.Loop() {
					if _, err := scalable.ListUserOrdersAtOffset(ctx, db, userID, page, perPage); err != nil {
						b.Fatal(err)
					}
				}
				benchkit.ReportCounts(b, counts)
			})
		}
	})
	b.Run("impl=keyset", func(b *testing.B) {
		for _, page := range pages(len(all)) {
			after := cursorBefore(all, page)
			b.Run(benchkit.Name("page", page), func(b *testing.B) {
				ctx, counts := pgtest.CountQueries(ctx)
				for b.Loop() {
					if _, _, err := scalable.ListUserOrdersAfter(ctx, db, userID, after, perPage); err != nil {
						b.Fatal(err)
					}
				}
				benchkit.ReportCounts(b, counts)
			})
		}
	})
}

// BenchmarkListUserOrders: the whole list against its first page, as the
// user's history grows.
func BenchmarkListUserOrders(b *testing.B) {
	scale := benchkit.Scale()
	db := pgtest.Shop(b, scale)
	impls := []struct {
		name string
		list func(ctx context.Context, userID int64) error
	}{
		{"all", func(ctx context.Context, userID int64) error {
			_, err := naive.ListUserOrders(ctx, db, userID)
			return err
		}},
		{"offset", func(ctx context.Context, userID int64) error {
			_, err := scalable.ListUserOrdersPage(ctx, db, userID, 1, perPage)
			return err
		}},
		{"keyset", func(ctx context.Context, userID int64) error {
			_, _, err := scalable.ListUserOrdersAfter(ctx, db, userID, nil, perPage)
			return err
		}},
	}
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, n := range benchkit.Sizes(scale.TopOrders) {
				userID, _ := scale.UserWithOrders(n)
				b.Run(benchkit.Name("orders", n), func(b *testing.B) {
					ctx, counts := pgtest.CountQueries(context.Background())
					for b.Loop() {
						if err := impl.list(ctx, userID); err != nil {
							b.Fatal(err)
						}
					}
					benchkit.ReportCounts(b, counts)
				})
			}
		})
	}
}

// TestPagesKeepOrdersWithoutItems walks the users whose lists hold the
// seeded edge cases: an order with no items, and two orders placed in the
// same microsecond. Pages are pages of orders, whatever their items: every
// walk is the whole list, and the list holds the itemless order.
func TestPagesKeepOrdersWithoutItems(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	for _, userID := range shop.Small.EdgeCaseUsers() {
		n := shop.Small.OrdersOf(userID)
		if n > 1000 {
			continue // the walk of 10,000 orders adds time, not cases
		}
		t.Run(benchkit.Name("orders", n), func(t *testing.T) {
			var want int
			err := db.QueryRow(ctx, `SELECT count(*) FROM orders o WHERE user_id = $1
				AND NOT EXISTS (SELECT FROM order_items i WHERE i.order_id = o.id)`, userID).Scan(&want)
			require.NoError(t, err)
			require.Equal(t, 1, want, "the seeded data has the edge case")

			all, err := naive.ListUserOrders(ctx, db, userID)
			require.NoError(t, err)
			require.Equal(t, n, len(all), "the whole list holds every order")
			itemless := 0
			for _, o := range all {
				if len(o.Items) == 0 {
					itemless++
					assert.NotNil(t, o.Items, "an order without items has an empty list of them, as lesson 1 returns it")
				}
			}
			assert.Equal(t, 1, itemless)

			for _, size := range []int{perPage, 3} {
				orders, _ := walkOffset(t, db, userID, size)
				assert.Equal(t, all, orders, "OFFSET pages of %d", size)
				orders, _ = walkKeyset(t, db, userID, size)
				assert.Equal(t, all, orders, "keyset pages of %d", size)
			}
		})
	}
}

// TestKeysetWalkSurvivesAnOrderWithoutItemsYet: an order whose items are
// inserted in a later statement is, for a moment, an order without items. A
// walker who reads the list at that moment still sees every order.
func TestKeysetWalkSurvivesAnOrderWithoutItemsYet(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	userID, _ := shop.Small.UserWithOrders(100)
	var orderID int64
	err := db.QueryRow(ctx, `INSERT INTO orders (id, user_id, status, created_at)
		SELECT max(id) + 1, $1, 'pending', now() FROM orders RETURNING id`, userID).Scan(&orderID)
	require.NoError(t, err)

	orders, _ := walkKeyset(t, db, userID, perPage)
	require.Equal(t, 101, len(orders), "every order, the newest without items yet")
	assert.Equal(t, orderID, orders[0].ID)
	assert.Empty(t, orders[0].Items)
}

// paginated is every paginated function of lesson 2, on a page size.
var paginated = []struct {
	name string
	list func(ctx context.Context, db *pgxpool.Pool, userID int64, size int) error
}{
	{"naive.ListUserOrdersPage", func(ctx context.Context, db *pgxpool.Pool, userID int64, size int) error {
		_, err := naive.ListUserOrdersPage(ctx, db, userID, 1, size)
		return err
	}},
	{"scalable.ListUserOrdersPage", func(ctx context.Context, db *pgxpool.Pool, userID int64, size int) error {
		_, err := scalable.ListUserOrdersPage(ctx, db, userID, 1, size)
		return err
	}},
	{"scalable.ListUserOrdersAfter", func(ctx context.Context, db *pgxpool.Pool, userID int64, size int) error {
		_, _, err := scalable.ListUserOrdersAfter(ctx, db, userID, nil, size)
		return err
	}},
	{"naive.ListFeedPage", func(ctx context.Context, db *pgxpool.Pool, _ int64, size int) error {
		_, _, err := naive.ListFeedPage(ctx, db, "", size)
		return err
	}},
	{"scalable.ListFeedPage", func(ctx context.Context, db *pgxpool.Pool, _ int64, size int) error {
		_, _, err := scalable.ListFeedPage(ctx, db, "", size)
		return err
	}},
}

// TestPaginationRefusesPageSizesItCannotServe: zero, negative and absurd
// page sizes get shop.ErrInvalidPage from every paginated function, never a
// panic or a database error; the largest allowed size works.
func TestPaginationRefusesPageSizesItCannotServe(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	userID, _ := shop.Small.UserWithOrders(10)
	for _, impl := range paginated {
		for _, size := range []int{0, -1, math.MinInt, shop.MaxPageSize + 1, math.MaxInt} {
			var err error
			assert.NotPanics(t, func() { err = impl.list(context.Background(), db, userID, size) }, "%s, page size %d", impl.name, size)
			assert.ErrorIs(t, err, shop.ErrInvalidPage, "%s, page size %d", impl.name, size)
		}
		assert.NoError(t, impl.list(context.Background(), db, userID, shop.MaxPageSize), impl.name)
	}
}

// TestOffsetRefusesPagesThatCannotExist: a page so deep that its offset
// overflows used to wrap around to page 1's rows.
func TestOffsetRefusesPagesThatCannotExist(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	userID, _ := shop.Small.UserWithOrders(100)
	for _, page := range []int{0, -1, math.MinInt, 1<<62 + 1, math.MaxInt} {
		_, err := naive.ListUserOrdersPage(context.Background(), db, userID, page, perPage)
		assert.ErrorIs(t, err, shop.ErrInvalidPage, "naive, page %d", page)
		_, err = scalable.ListUserOrdersPage(context.Background(), db, userID, page, perPage)
		assert.ErrorIs(t, err, shop.ErrInvalidPage, "scalable, page %d", page)
	}
	got, err := scalable.ListUserOrdersPage(context.Background(), db, userID, 1<<40, perPage)
	require.NoError(t, err, "a page past the end is a real page, and empty")
	assert.Empty(t, got.Orders)
}

// TestCursorIsBoundToItsListing: a cursor from one user's orders, sent with
// another user's id, is refused, not read as a position in their list.
func TestCursorIsBoundToItsListing(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	alice, _ := shop.Small.UserWithOrders(100)
	bob, _ := shop.Small.UserWithOrders(10)
	_, next, err := scalable.ListUserOrdersAfter(ctx, db, alice, nil, perPage)
	require.NoError(t, err)
	require.NotNil(t, next)
	_, _, err = scalable.ListUserOrdersAfter(ctx, db, bob, next, perPage)
	assert.ErrorIs(t, err, scalable.ErrInvalidCursor)
	assert.ErrorIs(t, err, shop.ErrInvalidPage)
}

// TestFeedTokensAreParsedStrictly: a feed token is exactly what the feed
// made, or it is refused; and the error quotes at most a few bytes of it.
func TestFeedTokensAreParsedStrictly(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	_, token, err := scalable.ListFeedPage(ctx, db, "", perPage)
	require.NoError(t, err)
	_, _, err = scalable.ListFeedPage(ctx, db, token, perPage)
	require.NoError(t, err)
	for _, bad := range []string{
		token + "junk", "+" + token, " " + token, token + " ", "0" + token,
		"9223372036854775807.1", "-1.5", "1.-5", "1.0", "1", ".", "1.2.3",
		"99999999999999999999999.1", strings.Repeat("9", 1<<20),
	} {
		_, _, err := scalable.ListFeedPage(ctx, db, bad, perPage)
		assert.ErrorIs(t, err, scalable.ErrInvalidCursor, shop.Quote(bad))
		assert.ErrorIs(t, err, shop.ErrInvalidPage, shop.Quote(bad))
		if err != nil {
			assert.Less(t, len(err.Error()), 200, "the error quotes a bounded part of the token")
		}
	}
	_, offset, err := naive.ListFeedPage(ctx, db, "", perPage)
	require.NoError(t, err)
	for _, bad := range []string{"+" + offset, " " + offset, offset + "junk", "0" + offset, "-1", strings.Repeat("9", 1<<20)} {
		_, _, err := naive.ListFeedPage(ctx, db, bad, perPage)
		assert.ErrorIs(t, err, shop.ErrInvalidPage, shop.Quote(bad))
		if err != nil {
			assert.Less(t, len(err.Error()), 200, "the error quotes a bounded part of the token")
		}
	}
}
