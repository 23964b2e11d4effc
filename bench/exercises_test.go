package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/nplusone"
	naivepagination "works-vs-scales/naive/pagination"
	scalable "works-vs-scales/scalable/nplusone"
	"works-vs-scales/scalable/pagination"
	"works-vs-scales/shop"
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
