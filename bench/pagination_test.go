package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
// total counts items.
func TestPagingJoinedRowsCutsOrders(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	userID, _ := shop.Small.UserWithOrders(100)
	all, err := naive.ListUserOrders(context.Background(), db, userID)
	require.NoError(t, err)
	itemsOf := make(map[int64]int, len(all))
	items := 0
	for _, o := range all {
		itemsOf[o.ID] = len(o.Items)
		items += len(o.Items)
	}

	cut := 0
	for page := 1; ; page++ {
		got, err := naive.ListUserOrdersPage(context.Background(), db, userID, page, perPage)
		require.NoError(t, err)
		if len(got.Orders) == 0 {
			break
		}
		assert.Equal(t, int64(items), got.Total, "the total counts item rows, not the user's 100 orders")
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
		t.Run(name("page", page), func(t *testing.T) {
			recorded, offsetQueries := pgtest.RecordQueries(ctx)
			_, err := scalable.ListUserOrdersPage(recorded, db, userID, page, perPage)
			require.NoError(t, err)
			queries := offsetQueries.Queries()
			require.Len(t, queries, 2, "a page and a count")
			assert.Equal(t, int64(page*perPage), rowsRead(t, db, queries[0]), "OFFSET reads the pages before")
			assert.Equal(t, int64(orders), rowsRead(t, db, queries[1]), "COUNT reads every order")

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
	return &scalable.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
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
func pages(n int) []int { return ladder(1, n/perPage) }

func BenchmarkUserOrdersPage(b *testing.B) {
	scale := benchScale()
	db := pgtest.Shop(b, scale)
	ctx := context.Background()
	userID, _ := scale.UserWithOrders(scale.TopOrders)
	all, err := naive.ListUserOrders(ctx, db, userID)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("impl=offset", func(b *testing.B) {
		for _, page := range pages(len(all)) {
			b.Run(name("page", page), func(b *testing.B) {
				ctx, counts := pgtest.CountQueries(ctx)
				for b.Loop() {
					if _, err := scalable.ListUserOrdersPage(ctx, db, userID, page, perPage); err != nil {
						b.Fatal(err)
					}
				}
				reportCounts(b, counts)
			})
		}
	})
	b.Run("impl=keyset", func(b *testing.B) {
		for _, page := range pages(len(all)) {
			after := cursorBefore(all, page)
			b.Run(name("page", page), func(b *testing.B) {
				ctx, counts := pgtest.CountQueries(ctx)
				for b.Loop() {
					if _, _, err := scalable.ListUserOrdersAfter(ctx, db, userID, after, perPage); err != nil {
						b.Fatal(err)
					}
				}
				reportCounts(b, counts)
			})
		}
	})
}

// BenchmarkListUserOrders: the whole list against its first page, as the
// user's history grows.
func BenchmarkListUserOrders(b *testing.B) {
	scale := benchScale()
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
		b.Run(name("impl", impl.name), func(b *testing.B) {
			for _, n := range sizes(scale.TopOrders) {
				userID, _ := scale.UserWithOrders(n)
				b.Run(name("orders", n), func(b *testing.B) {
					ctx, counts := pgtest.CountQueries(context.Background())
					for b.Loop() {
						if err := impl.list(ctx, userID); err != nil {
							b.Fatal(err)
						}
					}
					reportCounts(b, counts)
				})
			}
		})
	}
}
