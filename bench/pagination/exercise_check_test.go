package pagination

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	scalable "works-vs-scales/scalable/pagination"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/pagination"
	"works-vs-scales/shop"
)

// Lesson 2's exercise, in exercises/pagination. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise02, is in exercise_test.go, behind the exercise tag.

type listFeedPageFunc func(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error)

// checkExercise02 says what is still wrong with an answer to lesson 2's
// exercise, or nil when it is done: paging the feed while a post is published
// before every page shows each post exactly once, in feed order. Before it
// walks, the check adds what the seeded posts lack: posts published in the
// same microsecond across a page boundary, and posts whose id is not in time
// order (imported or backdated). db must be a copy of the shop: the check
// writes posts.
func checkExercise02(t testing.TB, db *pgxpool.Pool, list listFeedPageFunc) error {
	const limit, pages = 20, 10
	ctx := context.Background()
	// Ten posts published in one microsecond, between the seeded posts 15 and
	// 16 of the feed: feed places 16 to 25, across the boundary of page 1.
	// Then four posts with ids above every other, older than the posts around
	// them (imported, or backdated), on pages 2 to 5.
	const awkwardPosts = `
		WITH seeded AS (
			SELECT id, created_at, row_number() OVER (ORDER BY created_at DESC, id DESC) AS place FROM posts
		),
		top AS (SELECT max(id) AS id FROM posts),
		boundary AS (
			SELECT max(created_at) FILTER (WHERE place = 15) AS before,
				max(created_at) FILTER (WHERE place = 16) AS after
			FROM seeded
		),
		tied AS (
			INSERT INTO posts (id, author_id, title, created_at)
			SELECT top.id + n, 1, 'Same microsecond ' || n, boundary.after + (boundary.before - boundary.after) / 2
			FROM top, boundary, generate_series(1, 10) AS n
		)
		INSERT INTO posts (id, author_id, title, created_at)
		SELECT top.id + 1000 + place, 2, 'Imported ' || place, created_at - interval '1 microsecond'
		FROM top, seeded WHERE place IN (30, 45, 60, 90)`
	if _, err := db.Exec(ctx, awkwardPosts); err != nil {
		return fmt.Errorf("add tied and out-of-order posts: %w", err)
	}
	const feedQuery = `SELECT id, created_at FROM posts ORDER BY created_at DESC, id DESC LIMIT $1`
	rows, err := db.Query(ctx, feedQuery, limit*pages)
	if err != nil {
		return fmt.Errorf("the feed to compare with: %w", err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowToStructByPos[feedPlace])
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
	if err := compareFeeds(want, seen, limit); err != nil {
		return err
	}
	t.Logf("%d pages of %d, a post published before each, 10 posts of one microsecond across a page boundary, 4 ids out of time order: every post once, in feed order",
		pages, limit)
	return nil
}

// feedPlace is a post in the feed: its id and sort key.
type feedPlace struct {
	ID        int64
	CreatedAt time.Time
}

// compareFeeds says how the posts seen while paging by limit differ from the
// feed, in the words of lesson 2, or returns nil when they are the same.
func compareFeeds(want []feedPlace, seen []shop.Post, limit int) error {
	wantIDs, seenIDs := make([]int64, len(want)), make([]int64, len(seen))
	for i := range want {
		wantIDs[i] = want[i].ID
	}
	times := make(map[int64]int) // posts per created_at
	for _, p := range want {
		times[p.CreatedAt.UnixMicro()]++
	}
	timesSeen := make(map[int64]int)
	for i, p := range seen {
		seenIDs[i] = p.ID
		timesSeen[p.ID]++
	}
	if slices.Equal(wantIDs, seenIDs) {
		return nil
	}
	var repeated, skipped []int64
	tie, outOfOrder := false, false
	for i, p := range want {
		switch timesSeen[p.ID] {
		case 0:
			skipped = append(skipped, p.ID)
		case 1:
			continue
		default:
			repeated = append(repeated, p.ID)
		}
		tied := times[p.CreatedAt.UnixMicro()] > 1
		tie = tie || tied
		outOfOrder = outOfOrder || !tied && i > 0 && p.ID > want[i-1].ID
	}
	shifted := len(seen) > limit
	for end := limit; end < len(seen); end += limit {
		shifted = shifted && seen[end].ID == seen[end-1].ID
	}
	var why string
	switch {
	case shifted:
		why = "each page starts with the post that ended the last one: a post published meanwhile pushed the offset down; start each page after the last post's sort key (keyset)"
	case len(skipped) == 0 && len(repeated) == 0:
		why = "every post once, in the wrong order: the feed is newest first, ORDER BY created_at DESC, id DESC"
	case outOfOrder: // before tie: a walk by id alone also trips over the tied posts
		why = "ids are not in time order (a post imported or backdated has a newer id): a cursor on id alone skips them; the cursor is the sort key, (created_at, id)"
	case tie:
		why = "posts published in the same microsecond sit on a page boundary: a cursor on created_at alone skips or repeats them; let id break the tie, (created_at, id) < ($1, $2)"
	default:
		why = "a post was repeated or skipped when another was published"
	}
	return fmt.Errorf("paging the feed, %d posts repeated %s and %d skipped %s: %s\nids (-feed +seen):\n%s",
		len(repeated), someIDs(repeated), len(skipped), someIDs(skipped), why, cmp.Diff(wantIDs, seenIDs))
}

// someIDs formats the first few of ids.
func someIDs(ids []int64) string {
	const few = 6
	if len(ids) <= few {
		return fmt.Sprint(ids)
	}
	return strings.TrimSuffix(fmt.Sprint(ids[:few]), "]") + " …]"
}

func TestExercise02CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise02(t, pgtest.ShopClone(t, shop.Small), naive.ListFeedPage)
	require.ErrorContains(t, err, "each page starts with the post that ended the last one")
	t.Log(err)
}

func TestExercise02CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		list listFeedPageFunc
		want string
	}{
		{"keyset on created_at alone", feedPageByCreatedAt, "let id break the tie"},
		{"keyset on id alone", feedPageByID, "a cursor on id alone skips them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise02(t, pgtest.ShopClone(t, shop.Small), tc.list)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise02CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise02(t, pgtest.ShopClone(t, shop.Small), scalable.ListFeedPage))
}

// The wrong answers a trainee most often writes to each exercise, the ones
// its lesson warns about. The tests in exercises_test.go prove that each
// exercise's check fails on them, with a message that says what is wrong.

// feedPageByCreatedAt is a wrong answer to exercise 2: a keyset on created_at
// alone, which skips the posts that share the last post's microsecond.
func feedPageByCreatedAt(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	after := time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC)
	if token != "" {
		micros, err := strconv.ParseInt(token, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("feed page %q: %w", token, err)
		}
		after = time.UnixMicro(micros)
	}
	const feedAfterQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE created_at < $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	posts, err := queryPosts(ctx, db, feedAfterQuery, after, limit+1)
	if err != nil || len(posts) <= limit {
		return posts, "", err
	}
	return posts[:limit], strconv.FormatInt(posts[limit-1].CreatedAt.UnixMicro(), 10), nil
}

// feedPageByID is a wrong answer to exercise 2: a keyset on id alone, which
// skips the posts whose id is newer than their place in the feed.
func feedPageByID(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	after := int64(1 << 62)
	if token != "" {
		var err error
		if after, err = strconv.ParseInt(token, 10, 64); err != nil {
			return nil, "", fmt.Errorf("feed page %q: %w", token, err)
		}
	}
	const feedAfterQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE id < $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	posts, err := queryPosts(ctx, db, feedAfterQuery, after, limit+1)
	if err != nil || len(posts) <= limit {
		return posts, "", err
	}
	return posts[:limit], strconv.FormatInt(posts[limit-1].ID, 10), nil
}

func queryPosts(ctx context.Context, db *pgxpool.Pool, query string, args ...any) ([]shop.Post, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Post, error) {
		var p shop.Post
		err := row.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt)
		return p, err
	})
}
