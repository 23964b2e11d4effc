package nplusone

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/nplusone"
	scalable "works-vs-scales/scalable/nplusone"
	"works-vs-scales/shop"
)

// Lesson 1's exercise, in exercises/nplusone. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise01, is in exercise_test.go, behind the exercise tag.

type listPostsWithCommentsFunc func(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error)

// checkExercise01 says what is still wrong with an answer to lesson 1's
// exercise, or nil when it is done: the naive feed, in at most two round
// trips. Before it reads, the check publishes a post nobody has commented on
// yet, the corner case a join must keep. db must be a copy of the shop.
func checkExercise01(t testing.TB, db *pgxpool.Pool, list listPostsWithCommentsFunc) error {
	const perPost = 3
	ctx := context.Background()
	const publishQuery = `INSERT INTO posts (id, author_id, title, created_at)
		SELECT max(id) + 1, 1, 'No comments yet', now() FROM posts`
	if _, err := db.Exec(ctx, publishQuery); err != nil {
		return fmt.Errorf("publish a post: %w", err)
	}
	naiveCtx, naiveCounts := pgtest.CountQueries(ctx)
	want, err := naive.ListPostsWithComments(naiveCtx, db, feedSize, perPost)
	if err != nil {
		return fmt.Errorf("the naive feed to compare with: %w", err)
	}
	counted, counts := pgtest.CountQueries(ctx)
	got, err := list(counted, db, feedSize, perPost)
	if err != nil && strings.Contains(err.Error(), "cannot scan NULL") {
		return fmt.Errorf("your ListPostsWithComments failed on a NULL (some authors have no phone number, some posts no comments): "+
			"scan a column that may be NULL into a pointer, such as *string: %w", err)
	}
	if err != nil {
		return fmt.Errorf("your ListPostsWithComments failed: %w", err)
	}
	if err := compareFeedsWithComments(want, got); err != nil {
		return err
	}
	if trips := counts.RoundTrips(); trips > 2 {
		return fmt.Errorf("right answer, in %d round trips for %d posts: make it at most 2", trips, feedSize)
	}
	t.Logf("%d posts with their %d latest comments, round trips: %d (the naive feed: %d)", feedSize, perPost, counts.RoundTrips(), naiveCounts.RoundTrips())
	return nil
}

// compareFeedsWithComments says how got differs from the feed want, in
// lesson 1's words, or returns nil when they are equal.
func compareFeedsWithComments(want, got []shop.FeedPostWithComments) error {
	wantByID := make(map[int64]shop.FeedPostWithComments, len(want))
	for _, p := range want {
		wantByID[p.Post.ID] = p
	}
	gotIDs := make(map[int64]bool, len(got))
	for _, p := range got {
		gotIDs[p.Post.ID] = true
	}
	for _, p := range want {
		if !gotIDs[p.Post.ID] && p.CommentCount == 0 {
			return fmt.Errorf("post %d, which has no comments, is missing from your feed (%d posts, want %d): "+
				"a join drops a post without comments; LEFT JOIN (LATERAL) keeps it, with NULL columns", p.Post.ID, len(got), len(want))
		}
	}
	for i, p := range got {
		w, ok := wantByID[p.Post.ID]
		if !ok || i >= len(want) {
			break
		}
		if p.CommentCount != w.CommentCount && p.CommentCount == int64(len(p.LatestComments)) {
			return fmt.Errorf("post %d has %d comments, your feed says %d, the comments it kept: count all of the post's comments (count(*) in a subquery), not the latest %d",
				p.Post.ID, w.CommentCount, p.CommentCount, len(p.LatestComments))
		}
		if p.LatestComments == nil && w.LatestComments != nil && len(w.LatestComments) == 0 {
			return fmt.Errorf("post %d: your LatestComments is nil, the naive feed's is empty ([]shop.Comment{}): a client reading the feed as JSON gets null, not []",
				p.Post.ID)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return fmt.Errorf("your feed differs from the naive one (%d posts, want %d; -naive +yours):\n%s", len(got), len(want), diff)
	}
	return nil
}

func TestExercise01CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise01(t, pgtest.ShopClone(t, shop.Small), naive.ListPostsWithComments)
	require.ErrorContains(t, err, fmt.Sprintf("%d round trips", 1+3*feedSize))
	t.Log(err)
}

func TestExercise01CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		list listPostsWithCommentsFunc
		want string
	}{
		{"an inner join", feedWithInnerJoin, "a join drops a post without comments"},
		{"the count of the comments kept", feedCountingKeptComments, "count all of the post's comments"},
		{"a phone that cannot be NULL", feedScanningPhoneIntoString, "scan a column that may be NULL into a pointer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise01(t, pgtest.ShopClone(t, shop.Small), tc.list)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise01CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise01(t, pgtest.ShopClone(t, shop.Small), scalable.ListPostsWithComments))
}

// feedWithInnerJoin is a wrong answer to exercise 1: one query, but its
// inner join drops the posts nobody has commented on.
func feedWithInnerJoin(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	const feedWithCommentsQuery = `SELECT p.id, p.author_id, p.title, p.created_at,
			u.id, u.name, u.email, u.phone, u.created_at,
			(SELECT count(*) FROM comments c WHERE c.post_id = p.id),
			c.id, c.author_id, c.body, c.created_at
		FROM (SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT $1) p
		JOIN users u ON u.id = p.author_id
		JOIN LATERAL (
			SELECT id, author_id, body, created_at FROM comments
			WHERE post_id = p.id ORDER BY created_at DESC, id DESC LIMIT $2
		) c ON true
		ORDER BY p.created_at DESC, p.id DESC, c.created_at DESC, c.id DESC`
	return queryFeedWithComments(ctx, db, false, feedWithCommentsQuery, limit, perPost)
}

// feedCountingKeptComments is a wrong answer to exercise 1: one query, whose
// comment count is the number of comments it kept, at most perPost.
func feedCountingKeptComments(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	const feedWithCommentsQuery = `SELECT p.id, p.author_id, p.title, p.created_at,
			u.id, u.name, u.email, u.phone, u.created_at,
			count(c.id) OVER (PARTITION BY p.id),
			c.id, c.author_id, c.body, c.created_at
		FROM (SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT $1) p
		JOIN users u ON u.id = p.author_id
		LEFT JOIN LATERAL (
			SELECT id, author_id, body, created_at FROM comments
			WHERE post_id = p.id ORDER BY created_at DESC, id DESC LIMIT $2
		) c ON true
		ORDER BY p.created_at DESC, p.id DESC, c.created_at DESC, c.id DESC`
	return queryFeedWithComments(ctx, db, false, feedWithCommentsQuery, limit, perPost)
}

// feedScanningPhoneIntoString is a wrong answer to exercise 1: the right
// query, but the author's phone scanned into a string, as if it could not be
// NULL; it fails on the first author who gave none.
func feedScanningPhoneIntoString(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	const feedWithCommentsQuery = `SELECT p.id, p.author_id, p.title, p.created_at,
			u.id, u.name, u.email, u.phone, u.created_at,
			(SELECT count(*) FROM comments c WHERE c.post_id = p.id),
			c.id, c.author_id, c.body, c.created_at
		FROM (SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT $1) p
		JOIN users u ON u.id = p.author_id
		LEFT JOIN LATERAL (
			SELECT id, author_id, body, created_at FROM comments
			WHERE post_id = p.id ORDER BY created_at DESC, id DESC LIMIT $2
		) c ON true
		ORDER BY p.created_at DESC, p.id DESC, c.created_at DESC, c.id DESC`
	return queryFeedWithComments(ctx, db, true, feedWithCommentsQuery, limit, perPost)
}

// queryFeedWithComments runs a feed query whose rows are a post, its author,
// its comment count and one of its comments (NULL for none), and puts the
// rows back together. With phoneAsString it scans the author's phone into a
// string instead of a *string.
func queryFeedWithComments(ctx context.Context, db *pgxpool.Pool, phoneAsString bool, query string, args ...any) ([]shop.FeedPostWithComments, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	feed := []shop.FeedPostWithComments{}
	for rows.Next() {
		var item shop.FeedPostWithComments
		p, a := &item.Post, &item.Author
		var commentID, commentAuthorID *int64
		var body *string
		var commentedAt *time.Time
		var phone string
		phoneDest := any(&a.Phone)
		if phoneAsString {
			phoneDest = &phone
		}
		err := rows.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt, &a.ID, &a.Name, &a.Email, phoneDest, &a.CreatedAt, &item.CommentCount,
			&commentID, &commentAuthorID, &body, &commentedAt)
		if err != nil {
			return nil, err
		}
		if phoneAsString {
			a.Phone = &phone
		}
		if n := len(feed); n == 0 || feed[n-1].Post.ID != p.ID {
			item.LatestComments = []shop.Comment{}
			feed = append(feed, item)
		}
		if commentID != nil {
			last := &feed[len(feed)-1]
			last.LatestComments = append(last.LatestComments, shop.Comment{ID: *commentID, PostID: p.ID, AuthorID: *commentAuthorID, Body: *body, CreatedAt: *commentedAt})
		}
	}
	return feed, rows.Err()
}
