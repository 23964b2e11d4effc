package nplusone

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

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
// trips, and no more rows than the feed shows. Before it reads, the check
// publishes a post with 100 comments, and a post nobody has commented on yet,
// the corner case a join must keep. db must be a copy of the shop.
func checkExercise01(t testing.TB, db *pgxpool.Pool, list listPostsWithCommentsFunc) error {
	const perPost, popular = 3, 100
	ctx := context.Background()
	const publishQuery = `
		WITH popular AS (
			INSERT INTO posts (id, author_id, title, created_at)
			SELECT max(id) + 1, 2, 'Everybody has a view', now() - interval '1 minute' FROM posts
			RETURNING id, created_at
		),
		comments AS (
			INSERT INTO comments (id, post_id, author_id, body, created_at)
			SELECT (SELECT max(id) FROM comments) + n, popular.id, 1 + n % 50, 'View ' || n, popular.created_at + n * interval '1 second'
			FROM popular, generate_series(1, $1::int) AS n
		)
		INSERT INTO posts (id, author_id, title, created_at)
		SELECT popular.id + 1, 1, 'No comments yet', now() FROM popular`
	if _, err := db.Exec(ctx, publishQuery, popular); err != nil {
		return fmt.Errorf("publish two posts: %w", err)
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
	if rows, most := counts.Rows(), int64(feedSize*(perPost+1)); rows > most {
		return fmt.Errorf("right answer, in %d round trips, but your queries returned %d rows for %d posts with at most %d comments each (%d rows at most), and one post of the feed has %d comments: "+
			"the database sent comments the feed does not show, and your code dropped them; keep the latest %d of each post inside the database (a LIMIT in a LATERAL subquery, or row_number())",
			counts.RoundTrips(), rows, feedSize, perPost, most, popular, perPost)
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
				"a join drops a post without comments (LEFT JOIN keeps it, with NULL columns), and so does code that adds a post to the feed only when one of its comments arrives",
				p.Post.ID, len(got), len(want))
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
		{"a goroutine per post", feedWithCommentsInGoroutines, fmt.Sprintf("right answer, in %d round trips for %d posts", 1+feedSize, feedSize)},
		{"every comment of the page, three kept in Go", feedKeepingThreeInGo, "the database sent comments the feed does not show"},
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

// The wrong answers below are written from the lesson's "Why it breaks" as a
// trainee writes them: one makes the round trips wait for each other less,
// one makes them fewer by sending more.

// feedWithCommentsInGoroutines is a wrong answer to exercise 1: the posts in
// one query, then each post's comments in a goroutine of its own, at once, so
// that the round trips overlap; they are still one per post.
func feedWithCommentsInGoroutines(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	feed, err := scalable.ListPosts(ctx, db, limit)
	if err != nil {
		return nil, err
	}
	result := make([]shop.FeedPostWithComments, len(feed))
	g, ctx := errgroup.WithContext(ctx)
	for i, item := range feed {
		g.Go(func() error {
			const latestComments = `SELECT id, post_id, author_id, body, created_at FROM comments
				WHERE post_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`
			rows, err := db.Query(ctx, latestComments, item.Post.ID, perPost)
			if err != nil {
				return err
			}
			comments, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shop.Comment])
			result[i] = shop.FeedPostWithComments{FeedPost: item, LatestComments: comments}
			return err
		})
	}
	return result, g.Wait()
}

// feedKeepingThreeInGo is a wrong answer to exercise 1: the posts in one
// query, then every comment of the page's posts in one more, newest first,
// of which Go keeps the first perPost of each post: two round trips, and
// every comment of a popular post sent to be dropped.
func feedKeepingThreeInGo(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	feed, err := scalable.ListPosts(ctx, db, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(feed))
	for i, item := range feed {
		ids[i] = item.Post.ID
	}
	const pageComments = `SELECT id, post_id, author_id, body, created_at FROM comments
		WHERE post_id = ANY($1) ORDER BY post_id, created_at DESC, id DESC`
	rows, err := db.Query(ctx, pageComments, ids)
	if err != nil {
		return nil, err
	}
	comments, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shop.Comment])
	if err != nil {
		return nil, err
	}
	latest := make(map[int64][]shop.Comment)
	for _, c := range comments {
		if len(latest[c.PostID]) < perPost {
			latest[c.PostID] = append(latest[c.PostID], c)
		}
	}
	result := make([]shop.FeedPostWithComments, len(feed))
	for i, item := range feed {
		result[i] = shop.FeedPostWithComments{FeedPost: item, LatestComments: append([]shop.Comment{}, latest[item.Post.ID]...)}
	}
	return result, nil
}
