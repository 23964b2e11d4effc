package nplusone

import (
	"context"
	"math"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/nplusone"
	scalable "works-vs-scales/scalable/nplusone"
	"works-vs-scales/shop"
)

// Lesson 1: N+1 queries against one JOIN, with pgx.Batch as the middle road.

// getUserOrdersImpls are the ways to load a user's orders, naive first: the
// answer the others must give.
var getUserOrdersImpls = []struct {
	name string
	get  func(context.Context, *pgxpool.Pool, int64) (shop.UserOrders, error)
	// cost is the statements and round trips the database sees for n orders.
	cost func(n int64) (statements, roundTrips int64)
}{
	{"naive", naive.GetUserOrders, func(n int64) (int64, int64) { return n + 2, n + 2 }},
	{"batch", scalable.GetUserOrdersBatch, func(n int64) (int64, int64) {
		if n == 0 {
			return 2, 1
		}
		return n + 2, 2
	}},
	{"scalable", scalable.GetUserOrders, func(int64) (int64, int64) { return 1, 1 }},
}

// ordersAcrossTheSkew are order counts from the users who never ordered to
// the busiest one at the small scale.
var ordersAcrossTheSkew = []int{0, 1, 10, 100, 1000, 10_000}

func TestGetUserOrdersAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	withoutPhone := 0
	for _, n := range ordersAcrossTheSkew {
		userID, ok := shop.Small.UserWithOrders(n)
		require.True(t, ok, "the small shop has a user with %d orders", n)
		t.Run(benchkit.Name("orders", n), func(t *testing.T) {
			want, err := naive.GetUserOrders(ctx, db, userID)
			require.NoError(t, err)
			requireWellFormed(t, want, userID, n)
			if want.User.Phone == nil {
				withoutPhone++
			}
			for _, impl := range getUserOrdersImpls[1:] {
				got, err := impl.get(ctx, db, userID)
				require.NoError(t, err, impl.name)
				require.Equal(t, want, got, "%s disagrees with naive", impl.name)
			}
		})
	}
	require.Positive(t, withoutPhone, "the users compared include some without a phone number (NULL)")
	require.Less(t, withoutPhone, len(ordersAcrossTheSkew), "and some with one")
}

// requirePhoneAsSeeded checks that the user's phone number is read, NULL
// included: every shop.NoPhoneEvery-th user has none, a nil Phone; the others
// have one.
func requirePhoneAsSeeded(t *testing.T, u shop.User) {
	t.Helper()
	if u.ID%shop.NoPhoneEvery == 0 {
		require.Nil(t, u.Phone, "user %d gave no phone number", u.ID)
	} else {
		require.NotNil(t, u.Phone, "user %d has a phone number", u.ID)
		require.NotEmpty(t, *u.Phone, "user %d has a phone number", u.ID)
	}
}

// requireWellFormed checks the answer itself, so that agreeing cannot mean
// being wrong the same way. Every user with 10 or more orders here is one of
// shop.Scale.EdgeCaseUsers: one of their orders has no items, and two were
// placed in the same microsecond; both must be in the answer.
func requireWellFormed(t *testing.T, got shop.UserOrders, userID int64, orders int) {
	t.Helper()
	require.Equal(t, userID, got.User.ID)
	require.NotEmpty(t, got.User.Email)
	requirePhoneAsSeeded(t, got.User)
	require.Equal(t, orders, len(got.Orders))
	itemless, tied := 0, 0
	for i, o := range got.Orders {
		if len(o.Items) == 0 {
			itemless++
			require.NotNil(t, o.Items, "order %d: no items is an empty list, not nil", o.ID)
		}
		if i > 0 && o.CreatedAt.Equal(got.Orders[i-1].CreatedAt) {
			tied++
		}
		require.Equal(t, userID, o.UserID)
		if i > 0 {
			prev := got.Orders[i-1]
			require.True(t, o.CreatedAt.Before(prev.CreatedAt) || o.CreatedAt.Equal(prev.CreatedAt) && o.ID < prev.ID,
				"orders newest first: %d (%v) after %d (%v)", o.ID, o.CreatedAt, prev.ID, prev.CreatedAt)
		}
		for j, item := range o.Items {
			require.Equal(t, int32(j+1), item.LineNo, "order %d in line order", o.ID)
			require.NotZero(t, item.Product.ID)
			require.NotEmpty(t, item.Product.Name)
		}
	}
	if orders >= 10 {
		require.Equal(t, 1, itemless, "the user's order without items is in the answer")
		require.Equal(t, 1, tied, "the user's two orders of one microsecond are in the answer")
	} else {
		require.Zero(t, itemless)
	}
}

func TestGetUserOrdersUnknownUser(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	unknown := int64(shop.Small.Users() + 1)
	for _, impl := range getUserOrdersImpls {
		_, err := impl.get(context.Background(), db, unknown)
		require.ErrorIs(t, err, shop.ErrUserNotFound, impl.name)
	}
}

// TestGetUserOrdersQueries is the lesson as a fact rather than a timing: the
// naive version's queries grow with the orders, the scalable one's do not.
func TestGetUserOrdersQueries(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	for _, n := range ordersAcrossTheSkew {
		userID, _ := shop.Small.UserWithOrders(n)
		for _, impl := range getUserOrdersImpls {
			ctx, counts := pgtest.CountQueries(context.Background())
			_, err := impl.get(ctx, db, userID)
			require.NoError(t, err)
			statements, roundTrips := impl.cost(int64(n))
			assert.Equal(t, statements, counts.Statements(), "%s statements for %d orders", impl.name, n)
			assert.Equal(t, roundTrips, counts.RoundTrips(), "%s round trips for %d orders", impl.name, n)
		}
	}
}

func BenchmarkGetUserOrders(b *testing.B) {
	scale := benchkit.Scale()
	db := pgtest.Shop(b, scale)
	for _, impl := range getUserOrdersImpls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, n := range benchkit.Sizes(scale.TopOrders) {
				userID, ok := scale.UserWithOrders(n)
				if !ok {
					b.Fatalf("scale %v has no user with %d orders", scale, n)
				}
				b.Run(benchkit.Name("orders", n), func(b *testing.B) {
					ctx, counts := pgtest.CountQueries(context.Background())
					for b.Loop() {
						if _, err := impl.get(ctx, db, userID); err != nil {
							b.Fatal(err)
						}
					}
					benchkit.ReportCounts(b, counts)
				})
			}
		})
	}
}

// feedSize is the feed of the story: the latest 50 posts, 101 queries.
const feedSize = 50

var listPostsImpls = []struct {
	name string
	list func(context.Context, *pgxpool.Pool, int) ([]shop.FeedPost, error)
}{
	{"naive", naive.ListPosts},
	{"scalable", scalable.ListPosts},
}

func TestListPostsAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	want, err := naive.ListPosts(ctx, db, feedSize)
	require.NoError(t, err)
	require.Len(t, want, feedSize)
	commented, withoutPhone := 0, 0
	for i, item := range want {
		require.Equal(t, item.Post.AuthorID, item.Author.ID)
		requirePhoneAsSeeded(t, item.Author)
		if item.Author.Phone == nil {
			withoutPhone++
		}
		if i > 0 {
			require.False(t, item.Post.CreatedAt.After(want[i-1].Post.CreatedAt), "newest first")
		}
		if item.CommentCount > 0 {
			commented++
		}
	}
	require.NotZero(t, commented, "some posts in the feed have comments")
	require.NotZero(t, withoutPhone, "some authors in the feed have no phone number (NULL)")
	require.Less(t, withoutPhone, len(want), "some authors in the feed have a phone number")

	got, err := scalable.ListPosts(ctx, db, feedSize)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestListPostsQueries(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	want := map[string]int64{"naive": 1 + 2*feedSize, "scalable": 1}
	for _, impl := range listPostsImpls {
		ctx, counts := pgtest.CountQueries(context.Background())
		_, err := impl.list(ctx, db, feedSize)
		require.NoError(t, err)
		assert.Equal(t, want[impl.name], counts.Statements(), impl.name)
		assert.Equal(t, want[impl.name], counts.RoundTrips(), impl.name)
	}
}

func BenchmarkListPosts(b *testing.B) {
	db := pgtest.Shop(b, shop.Small)
	for _, impl := range listPostsImpls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, n := range benchkit.Sizes(1000) {
				b.Run(benchkit.Name("posts", n), func(b *testing.B) {
					ctx, counts := pgtest.CountQueries(context.Background())
					for b.Loop() {
						if _, err := impl.list(ctx, db, n); err != nil {
							b.Fatal(err)
						}
					}
					benchkit.ReportCounts(b, counts)
				})
			}
		})
	}
}

// TestListPostsRefusesPageSizesItCannotServe: a feed of zero, minus one or
// MaxInt posts is a page size no listing serves: shop.ErrInvalidPage, not a
// database error or 20,001 queries.
func TestListPostsRefusesPageSizesItCannotServe(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	for _, impl := range listPostsImpls {
		for _, n := range []int{0, -1, shop.MaxPageSize + 1, math.MaxInt} {
			_, err := impl.list(context.Background(), db, n)
			assert.ErrorIs(t, err, shop.ErrInvalidPage, "%s, %d posts", impl.name, n)
		}
	}
	for name, list := range map[string]func(context.Context, *pgxpool.Pool, int, int) ([]shop.FeedPostWithComments, error){
		"naive": naive.ListPostsWithComments, "scalable": scalable.ListPostsWithComments,
	} {
		for _, n := range []int{0, -1, shop.MaxPageSize + 1, math.MaxInt} {
			_, err := list(context.Background(), db, n, 3)
			assert.ErrorIs(t, err, shop.ErrInvalidPage, "%s, %d posts", name, n)
			_, err = list(context.Background(), db, feedSize, n)
			assert.ErrorIs(t, err, shop.ErrInvalidPage, "%s, %d comments a post", name, n)
		}
	}
}
