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
// walks, the check adds what the seeded posts lack, each where a wrong cursor
// trips on it: posts published in the same microsecond across the boundary of
// page 1, posts whose id is not in time order (imported or backdated) inside
// pages 2 and 3, and three pages of posts one microsecond apart, in one
// millisecond (a timestamp cut to the millisecond or the second loses some).
// db must be a copy of the shop: the check writes posts.
//
// When a walk goes wrong, the check walks again with nothing published, and
// says what it measured: whether publishing moved the pages, and what the
// first post lost has in common with the post that ended the page before it.
func checkExercise02(t testing.TB, db *pgxpool.Pool, list listFeedPageFunc) error {
	const limit, pages = 20, 10
	ctx := context.Background()
	if err := addAwkwardPosts(ctx, db); err != nil {
		return err
	}
	want, err := feedPlaces(ctx, db, limit*pages)
	if err != nil {
		return err
	}
	seen, err := walkFeed(ctx, db, list, limit, pages, true)
	if err != nil {
		return err
	}
	lost := compareFeeds(want, seen, limit)
	if lost == nil {
		t.Logf("%d pages of %d, a post published before each, 10 posts of one microsecond across a page boundary, ids out of time order, three pages of posts 1 µs apart: every post once, in feed order",
			pages, limit)
		return nil
	}
	// The experiment: the same walk, with nothing published meanwhile.
	quietWant, err := feedPlaces(ctx, db, limit*pages)
	if err != nil {
		return err
	}
	quietSeen, err := walkFeed(ctx, db, list, limit, pages, false)
	if err != nil {
		return err
	}
	quietLost := compareFeeds(quietWant, quietSeen, limit)
	if quietLost == nil {
		return fmt.Errorf("paging the feed while posts were published, %s; paging it again with nothing published, every post once, in order: "+
			"your pages move when a post is published, as an offset's do (each new post pushes every row down by one); "+
			"start each page after the sort key of the last post shown (see \"The scales version\")\n%s", lost.counts(), lost.diff)
	}
	return fmt.Errorf("paging the feed, %s, and the same with nothing published: %s (see \"The scales version\")\n%s",
		lost.counts(), quietLost.why(), quietLost.diff)
}

// addAwkwardPosts adds to db's feed, newest first: ten posts published in one
// microsecond at places 16 to 25 (across the end of page 1), a post with an
// id above every other but older than the post before it at places 31 and 51
// (inside pages 2 and 3), and gives the posts at places 61 to 120 times one
// microsecond apart, all in one millisecond (from .123999 down to .123940):
// however earlier pages went, at least two page boundaries fall among them.
func addAwkwardPosts(ctx context.Context, db *pgxpool.Pool) error {
	const ranked = `WITH feed AS (SELECT id, created_at, row_number() OVER (ORDER BY created_at DESC, id DESC) AS place FROM posts)`
	const tiedPosts = ranked + `,
		boundary AS (
			SELECT max(created_at) FILTER (WHERE place = 15) AS before,
				max(created_at) FILTER (WHERE place = 16) AS after
			FROM feed
		)
		INSERT INTO posts (id, author_id, title, created_at)
		SELECT (SELECT max(id) FROM posts) + n, 1, 'Same microsecond ' || n, boundary.after + (boundary.before - boundary.after) / 2
		FROM boundary, generate_series(1, 10) AS n`
	if _, err := db.Exec(ctx, tiedPosts); err != nil {
		return fmt.Errorf("add posts published in one microsecond: %w", err)
	}
	for _, after := range []int{30, 50} {
		const importedPost = ranked + `
			INSERT INTO posts (id, author_id, title, created_at)
			SELECT (SELECT max(id) FROM posts) + 1000, 2, 'Imported', created_at - interval '1 microsecond'
			FROM feed WHERE place = $1::bigint`
		if _, err := db.Exec(ctx, importedPost, after); err != nil {
			return fmt.Errorf("add a post whose id is out of time order: %w", err)
		}
	}
	// The run: each post one microsecond older than the one before, all in
	// one millisecond, and ids still in time order.
	const run = ranked + `,
		span AS (
			SELECT date_trunc('second', max(created_at) FILTER (WHERE place = 121)
				+ (max(created_at) FILTER (WHERE place = 60) - max(created_at) FILTER (WHERE place = 121)) / 2) AS second
			FROM feed
		)
		UPDATE posts SET created_at = span.second + interval '0.123999 second' - (feed.place - 61) * interval '1 microsecond'
		FROM feed, span WHERE posts.id = feed.id AND feed.place BETWEEN 61 AND 120`
	if _, err := db.Exec(ctx, run); err != nil {
		return fmt.Errorf("set posts one microsecond apart: %w", err)
	}
	const outOfOrder = ranked + `
		SELECT count(*) FROM feed newer JOIN feed older ON older.place = newer.place + 1
		WHERE newer.place BETWEEN 61 AND 119 AND older.id > newer.id`
	var n int
	if err := db.QueryRow(ctx, outOfOrder).Scan(&n); err != nil {
		return fmt.Errorf("the posts one microsecond apart: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("the posts one microsecond apart: %d have ids out of time order; the check needs them in order", n)
	}
	return nil
}

// feedPlaces returns the first n posts of db's feed: their ids and sort keys.
func feedPlaces(ctx context.Context, db *pgxpool.Pool, n int) ([]feedPlace, error) {
	const feedQuery = `SELECT id, created_at FROM posts ORDER BY created_at DESC, id DESC LIMIT $1`
	rows, err := db.Query(ctx, feedQuery, n)
	if err != nil {
		return nil, fmt.Errorf("the feed to compare with: %w", err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowToStructByPos[feedPlace])
	if err != nil {
		return nil, fmt.Errorf("the feed to compare with: %w", err)
	}
	return want, nil
}

// walkFeed pages through the feed with list, publishing a post before every
// page after the first if publish is set, and returns the posts seen.
func walkFeed(ctx context.Context, db *pgxpool.Pool, list listFeedPageFunc, limit, pages int, publish bool) ([]shop.Post, error) {
	var seen []shop.Post
	token := ""
	for page := 1; page <= pages; page++ {
		if page > 1 && publish {
			const publishQuery = `INSERT INTO posts (id, author_id, title, created_at)
				SELECT max(id) + 1, 1, 'Breaking news', now() FROM posts`
			if _, err := db.Exec(ctx, publishQuery); err != nil {
				return nil, fmt.Errorf("publish a post: %w", err)
			}
		}
		got, next, err := list(ctx, db, token, limit)
		if err != nil {
			return nil, fmt.Errorf("your ListFeedPage, page %d: %w", page, err)
		}
		if len(got) != limit || next == "" {
			return nil, fmt.Errorf("page %d has %d posts and next token %q; want %d posts and a token", page, len(got), next, limit)
		}
		seen, token = append(seen, got...), next
	}
	return seen, nil
}

// feedPlace is a post in the feed: its id and sort key.
type feedPlace struct {
	ID        int64
	CreatedAt time.Time
}

// A feedDiff is how the posts seen while paging differ from the feed.
type feedDiff struct {
	repeated, skipped []int64
	diff              string // the ids, -feed +seen
	first             string // what happened first, at which page, measured
	relation          string // how the first post lost relates to the post that ended the page before it
}

// counts says which posts were repeated and which skipped.
func (d *feedDiff) counts() string {
	var parts []string
	if len(d.repeated) > 0 {
		parts = append(parts, fmt.Sprintf("%d posts were repeated %s", len(d.repeated), someIDs(d.repeated)))
	}
	if len(d.skipped) > 0 {
		parts = append(parts, fmt.Sprintf("%d posts were skipped %s", len(d.skipped), someIDs(d.skipped)))
	}
	if len(parts) == 0 {
		return "every post was seen once, in another order"
	}
	return strings.Join(parts, " and ")
}

// why says what the check measured of the first thing that went wrong.
func (d *feedDiff) why() string {
	return d.first + d.relation
}

// compareFeeds says how the posts seen while paging by limit differ from the
// feed, or returns nil when they are the same: the posts repeated and skipped,
// and, at the first page that went wrong, what the check can measure about it
// (the post it starts with, the first post it lost, and how that post's sort
// key compares with the one of the post that ended the page before).
func compareFeeds(want []feedPlace, seen []shop.Post, limit int) *feedDiff {
	wantIDs, seenIDs := make([]int64, len(want)), make([]int64, len(seen))
	for i := range want {
		wantIDs[i] = want[i].ID
	}
	timesSeen := make(map[int64]int)
	for i, p := range seen {
		seenIDs[i] = p.ID
		timesSeen[p.ID]++
	}
	if slices.Equal(wantIDs, seenIDs) {
		return nil
	}
	d := &feedDiff{diff: cmp.Diff(wantIDs, seenIDs)}
	for _, p := range want {
		switch timesSeen[p.ID] {
		case 0:
			d.skipped = append(d.skipped, p.ID)
		case 1:
		default:
			d.repeated = append(d.repeated, p.ID)
		}
	}
	i := 0
	for i < min(len(want), len(seen)) && want[i].ID == seen[i].ID {
		i++
	}
	page := i/limit + 1
	if page == 1 {
		d.first = fmt.Sprintf("page 1 differs from the newest %d posts at place %d (post %d, want post %d): the feed is newest first, ORDER BY created_at DESC, id DESC", limit, i+1, seenIDs[i], wantIDs[i])
		return d
	}
	last := seen[(page-1)*limit-1] // the post that ended the page before
	if i%limit == 0 && i < len(seen) && seen[i].ID == last.ID {
		d.first = fmt.Sprintf("page %d starts with post %d, which ended page %d: the next page starts at the last post's sort key, not after it (a comparison with <= rather than <, or a token that rounds the time up)",
			page, last.ID, page-1)
		return d
	}
	if i < len(seen) && timesSeen[wantIDs[i]] > 0 {
		d.first = fmt.Sprintf("page %d shows post %d at place %d, where the feed has post %d: the posts are not in feed order, created_at DESC, id DESC", page, seenIDs[i], i+1, wantIDs[i])
		return d
	}
	// The posts each page's query lost: those of the feed after the post
	// that ended the page before (the cursor's) and up to the page's last,
	// never seen. Each is compared with its cursor's post; what every exact
	// cursor includes comes first, then a tie, then an id out of time order.
	place := make(map[int64]int, len(want))
	for j, p := range want {
		place[p.ID] = j
	}
	type loss struct{ lost, cursor feedPlace }
	var found [3][]loss // older with a lower id; the same microsecond; a higher id
	for end := 2 * limit; end <= len(seen); end += limit {
		cursor, ok := place[seen[end-limit-1].ID]
		pageEnd, ok2 := place[seen[end-1].ID]
		if !ok || !ok2 {
			continue
		}
		for _, p := range want[cursor+1 : pageEnd+1] {
			if timesSeen[p.ID] > 0 {
				continue
			}
			l, c := p, want[cursor]
			switch {
			case l.CreatedAt.Before(c.CreatedAt) && l.ID < c.ID:
				found[0] = append(found[0], loss{l, c})
			case l.CreatedAt.Equal(c.CreatedAt):
				found[1] = append(found[1], loss{l, c})
			case l.ID > c.ID:
				found[2] = append(found[2], loss{l, c})
			}
		}
	}
	relations := [3]func(l, c feedPlace) string{
		func(l, c feedPlace) string {
			return fmt.Sprintf(": it is %v older, with a lower id, so it comes right after it in any order on (created_at, id), yet the page started past it: "+
				"your token does not hold the last post's created_at to the microsecond, as PostgreSQL keeps it (milliseconds, seconds and some text formats round it away)",
				c.CreatedAt.Sub(l.CreatedAt))
		},
		func(l, c feedPlace) string {
			return ": both were published in the same microsecond, and it has the lower id; the cursor does not break ties: compare the pair, (created_at, id) < ($1, $2)"
		},
		func(l, c feedPlace) string {
			return ": it is older, but its id is higher (imported, or backdated); the next page asked for ids below the last one's, and ids are not in time order: compare the pair, (created_at, id) < ($1, $2)"
		},
	}
	for k, losses := range found {
		if len(losses) == 0 {
			continue
		}
		l, c := losses[0].lost, losses[0].cursor
		d.first = fmt.Sprintf("post %d (created %s) never appeared after post %d (created %s), which ended a page", l.ID, micros(l.CreatedAt), c.ID, micros(c.CreatedAt))
		d.relation = relations[k](l, c)
		return d
	}
	d.first = fmt.Sprintf("page %d is the first to differ from the feed, at place %d (post %d, want post %d)", page, i+1, seenIDs[i], wantIDs[i])
	return d
}

// someIDs formats the first few of ids.
func someIDs(ids []int64) string {
	const few = 6
	if len(ids) <= few {
		return fmt.Sprint(ids)
	}
	return strings.TrimSuffix(fmt.Sprint(ids[:few]), "]") + " …]"
}

// micros formats t to the microsecond.
func micros(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }

func TestExercise02CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise02(t, pgtest.ShopClone(t, shop.Small), naive.ListFeedPage)
	require.ErrorContains(t, err, "your pages move when a post is published")
	t.Log(err)
}

func TestExercise02CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		list listFeedPageFunc
		want string
	}{
		{"keyset on created_at alone", feedPageByCreatedAt, "both were published in the same microsecond, and it has the lower id; the cursor does not break ties"},
		{"keyset on id alone", feedPageByID, "it is older, but its id is higher"},
		{"a token in milliseconds", feedPageByMilliseconds, "it is 1µs older, with a lower id"},
		{"the last post again", feedPageFromTheLast, "page 2 starts with post"},
		{"each column on its own", feedPageByBothColumns, "it is older, but its id is higher"},
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

// The wrong answers below are written from the lesson's "Why it breaks" and
// its keyset, as a trainee writes them: each keeps a cursor, and each cursor
// is wrong in its own way.

// feedPageByMilliseconds is a wrong answer to exercise 2: a keyset on
// (created_at, id), whose token keeps the time in milliseconds, as
// JavaScript's Date and many JSON encoders do. The page after a post starts
// at the start of its millisecond: the posts of the same millisecond, after
// it in the feed, are skipped.
func feedPageByMilliseconds(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	afterTime, afterID := time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC), int64(0)
	if token != "" {
		millis, id, ok := strings.Cut(token, "-")
		ms, err1 := strconv.ParseInt(millis, 10, 64)
		i, err2 := strconv.ParseInt(id, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, "", fmt.Errorf("feed page %q: not a token of the feed", token)
		}
		afterTime, afterID = time.UnixMilli(ms), i
	}
	const feedAfterQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3`
	posts, err := queryPosts(ctx, db, feedAfterQuery, afterTime, afterID, limit+1)
	if err != nil || len(posts) <= limit {
		return posts, "", err
	}
	last := posts[limit-1]
	return posts[:limit], fmt.Sprintf("%d-%d", last.CreatedAt.UnixMilli(), last.ID), nil
}

// feedPageFromTheLast is a wrong answer to exercise 2: a keyset on
// (created_at, id) that starts each page at the last post's key, with <=, so
// that nothing is missed, and shows that post again.
func feedPageFromTheLast(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	after := feedCursor{CreatedAt: time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC)}
	if token != "" {
		var err error
		if after, err = parseCursor(token); err != nil {
			return nil, "", err
		}
	}
	const feedFromQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE (created_at, id) <= ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3`
	posts, err := queryPosts(ctx, db, feedFromQuery, after.CreatedAt, after.ID, limit+1)
	if err != nil || len(posts) <= limit {
		return posts, "", err
	}
	last := posts[limit-1]
	return posts[:limit], fmt.Sprintf("%d.%d", last.CreatedAt.UnixMicro(), last.ID), nil
}

// feedPageByBothColumns is a wrong answer to exercise 2: both columns of the
// sort key in the token, each compared on its own (created_at <= $1 AND id <
// $2), which asks for posts with lower ids than the last: an older post with
// a higher id is skipped.
func feedPageByBothColumns(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	after := feedCursor{CreatedAt: time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC), ID: 1 << 62}
	if token != "" {
		var err error
		if after, err = parseCursor(token); err != nil {
			return nil, "", err
		}
	}
	const feedAfterQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE created_at <= $1 AND id < $2 ORDER BY created_at DESC, id DESC LIMIT $3`
	posts, err := queryPosts(ctx, db, feedAfterQuery, after.CreatedAt, after.ID, limit+1)
	if err != nil || len(posts) <= limit {
		return posts, "", err
	}
	last := posts[limit-1]
	return posts[:limit], fmt.Sprintf("%d.%d", last.CreatedAt.UnixMicro(), last.ID), nil
}

// feedCursor is a post's sort key, as the wrong answers' tokens hold it.
type feedCursor struct {
	CreatedAt time.Time
	ID        int64
}

// parseCursor reads a token of microseconds and an id, "micros.id".
func parseCursor(token string) (feedCursor, error) {
	micros, id, ok := strings.Cut(token, ".")
	m, err1 := strconv.ParseInt(micros, 10, 64)
	i, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return feedCursor{}, fmt.Errorf("feed page %q: not a token of the feed", token)
	}
	return feedCursor{CreatedAt: time.UnixMicro(m), ID: i}, nil
}
