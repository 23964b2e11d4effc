package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	naivebulkhead "works-vs-scales/naive/bulkheads"
	naivecaching "works-vs-scales/naive/caching"
	naiveindexes "works-vs-scales/naive/indexes"
	naivenestedloops "works-vs-scales/naive/nestedloops"
	naive "works-vs-scales/naive/nplusone"
	naivepagination "works-vs-scales/naive/pagination"
	naivestampede "works-vs-scales/naive/stampede"
	naiveexport "works-vs-scales/naive/streaming"
	naivevalidation "works-vs-scales/naive/validation"
	scalablebulkhead "works-vs-scales/scalable/bulkheads"
	scalablecaching "works-vs-scales/scalable/caching"
	scalableindexes "works-vs-scales/scalable/indexes"
	"works-vs-scales/scalable/nestedloops"
	scalable "works-vs-scales/scalable/nplusone"
	"works-vs-scales/scalable/pagination"
	scalablestampede "works-vs-scales/scalable/stampede"
	scalableexport "works-vs-scales/scalable/streaming"
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
	err := checkExercise02(t, pgtest.ShopClone(t, shop.Small), naivepagination.ListFeedPage)
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
	require.NoError(t, checkExercise02(t, pgtest.ShopClone(t, shop.Small), pagination.ListFeedPage))
}

type commonCustomersFunc func(a, b []shop.User, key func(shop.User) string) []shop.User

// checkExercise05 says what is still wrong with an answer to lesson 5's
// exercise, or nil when it is done: the naive answer, with key run at most
// twice per customer of both lists.
func checkExercise05(t testing.TB, common commonCustomersFunc) error {
	a, b := signups(3000)[:2000], signups(3000)[1000:]
	want := naivenestedloops.CommonCustomers(a, b, byEmail)
	key, calls := countingKey(byEmail)
	got := common(a, b, key)
	if diff := cmp.Diff(want, got); diff != "" {
		return fmt.Errorf("%d customers in common, want %d: %s (-naive +yours):\n%s", len(got), len(want), whyNotCommon(want, got), diff)
	}
	if budget := 2 * (len(a) + len(b)); *calls > budget {
		return fmt.Errorf("right answer, with %d calls to key for lists of %d and %d: make it at most %d", *calls, len(a), len(b), budget)
	}
	t.Logf("lists of %d and %d, %d customers in common: %d calls to key (the naive loops: %d at most, 2·len(a)·len(b))",
		len(a), len(b), len(want), *calls, 2*len(a)*len(b))
	return nil
}

// whyNotCommon says, in lesson 5's words, how got differs from want.
func whyNotCommon(want, got []shop.User) string {
	ids := func(users []shop.User) []int64 {
		out := make([]int64, len(users))
		for i, u := range users {
			out[i] = u.ID
		}
		return out
	}
	wantIDs, gotIDs := ids(want), ids(got)
	slices.Sort(wantIDs)
	slices.Sort(gotIDs)
	switch {
	case slices.Equal(wantIDs, gotIDs):
		return "the same customers in another order; return them in the order of a"
	case len(got) < len(want):
		return "some customers are missing: compare what key returns (the normalized email), not the email as typed"
	default:
		return "customers who are not on both lists, or the same customer twice"
	}
}

func TestExercise05CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise05(t, naivenestedloops.CommonCustomers)
	require.ErrorContains(t, err, "calls to key")
	t.Log(err)
}

func TestExercise05CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		common commonCustomersFunc
		want   string
	}{
		{"the email as typed", commonByTypedEmail, "compare what key returns"},
		{"the order of the map", commonInMapOrder, "return them in the order of a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise05(t, tc.common)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise05CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise05(t, nestedloops.CommonCustomers))
}

// checkExercise04 says what is still wrong with an answer to lesson 4's
// exercise, or nil when it is done: the naive bytes, with less than 2 MiB more
// live heap than at the start when the first bytes leave.
func checkExercise04(t testing.TB, db *pgxpool.Pool, export exportFunc) error {
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
	if err := compareExports(want.Bytes(), got.Bytes()); err != nil {
		return err
	}
	const budget = 2 << 20
	if held > budget {
		return fmt.Errorf("right bytes, but %.1f MiB more live heap at the first write: the file was held in memory before its first byte left; "+
			"stream the rows, writing each as it is read, to stay under %d MiB",
			float64(held)/(1<<20), budget>>20)
	}
	t.Logf("%d bytes, the same as the naive export; live heap at the first write: %.1f MiB more than at the start (budget %d MiB)",
		got.Len(), float64(held)/(1<<20), budget>>20)
	return nil
}

// compareExports says how the export got differs from want, in lesson 4's
// words, or returns nil when they are the same bytes.
func compareExports(want, got []byte) error {
	if bytes.Equal(want, got) {
		return nil
	}
	if bytes.HasPrefix(want, got) {
		return fmt.Errorf("your export stops after %d of %d bytes, at %q: the last lines stayed in the csv.Writer's buffer; call Flush at the end, then check Error",
			len(got), len(want), got[max(0, len(got)-40):])
	}
	wantLines, gotLines := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	line := 0
	for line < min(len(wantLines), len(gotLines)) && bytes.Equal(wantLines[line], gotLines[line]) {
		line++
	}
	var wantLine, gotLine []byte
	if line < len(wantLines) {
		wantLine = wantLines[line]
	}
	if line < len(gotLines) {
		gotLine = gotLines[line]
	}
	return fmt.Errorf("your export differs from the naive one (%d bytes, want %d) from line %d:\n got %q\nwant %q", len(got), len(want), line+1, gotLine, wantLine)
}

func TestExercise04CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise04(t, pgtest.Shop(t, shop.Small), naiveexport.ExportOrderItemsCSV)
	require.ErrorContains(t, err, "live heap")
	t.Log(err)
}

func TestExercise04CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		export exportFunc
		want   string
	}{
		{"rows streamed into a buffer", exportThroughBuffer, "the file was held in memory before its first byte left"},
		{"no Flush", exportWithoutFlush, "call Flush at the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise04(t, pgtest.Shop(t, shop.Small), tc.export)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise04CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise04(t, pgtest.Shop(t, shop.Small), scalableexport.ExportOrderItemsCSV))
}

// checkExercise03 says what is still wrong with an answer to lesson 3's
// exercise, or nil when it is done: with the index created, ProductSales reads
// the product's order items and no others, and answers as before. db must be a
// copy of the shop: the check creates the index.
func checkExercise03(t testing.TB, db *pgxpool.Pool, createIndex string) error {
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
		return fmt.Errorf("with your index the plan still does %v of order_items and reads %d rows for a product in %d orders: "+
			"ProductSales's WHERE tests product_id, and an index helps only when its first column is the one tested",
			scans, read, want.Orders)
	}
	t.Logf("with your index: %v of order_items, %d rows read for a product in %d orders", scans, read, want.Orders)
	return nil
}

func TestExercise03CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise03(t, pgtest.ShopClone(t, shop.Small), "")
	require.ErrorContains(t, err, "no index yet")
	t.Log(err)
}

func TestExercise03CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct{ name, index string }{
		{"a column the WHERE does not test", "CREATE INDEX wrong_idx ON order_items (quantity)"},
		{"product_id second", "CREATE INDEX wrong_idx ON order_items (order_id, product_id)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise03(t, pgtest.ShopClone(t, shop.Small), tc.index)
			require.ErrorContains(t, err, "an index helps only when its first column is the one tested")
			t.Log(err)
		})
	}
}

func TestExercise03CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise03(t, pgtest.ShopClone(t, shop.Small), scalableindexes.ProductSalesIndex))
}

type categoryCounter interface {
	CategoryCounts(ctx context.Context) (map[string]int64, error)
}

// newCatalogFunc makes a catalog on db, as NewCatalog does.
type newCatalogFunc func(db *pgxpool.Pool) (categoryCounter, error)

// menuAge is how old the check lets a cached menu be: the lesson's TTL is a
// minute.
const menuAge = 5 * time.Minute

// checkExercise06 says what is still wrong with an answer to lesson 6's
// exercise, or nil when it is done: the naive counts, at most one query for
// 100 calls one after another and for 50 at once, a copy for each caller, and
// a menu at most menuAge old. db must be a copy of the shop: the check locks
// the products table and adds a product.
//
// The TTL is checked on the fake clock of a testing/synctest bubble, as
// NewCatalog takes no clock: inside the bubble, time.Sleep(menuAge) returns
// at once, and the queries still reach the real database.
func checkExercise06(t *testing.T, db *pgxpool.Pool, newCatalog newCatalogFunc) error {
	naive, err := naivecaching.NewCatalog(db)
	if err != nil {
		return fmt.Errorf("the naive catalog to compare with: %w", err)
	}
	want, err := naive.CategoryCounts(context.Background())
	if err != nil {
		return fmt.Errorf("the counts to compare with: %w", err)
	}
	catalog, err := newCatalog(db)
	if err != nil {
		return fmt.Errorf("your NewCatalog: %w", err)
	}
	ctx, counts := pgtest.CountQueries(context.Background())
	for call := 1; call <= 100; call++ {
		got, err := catalog.CategoryCounts(ctx)
		if err != nil {
			return fmt.Errorf("your CategoryCounts, call %d: %w", call, err)
		}
		if _, ok := got["not a category"]; ok {
			return fmt.Errorf("call %d returned the map that call %d changed: you returned your cache's own map, so every caller changes everyone's menu; return a copy (maps.Clone)",
				call, call-1)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("call %d: your counts differ from the naive ones (-naive +yours):\n%s", call, diff)
		}
		got["not a category"] = 1 // a caller changing its answer must not change the next one
	}
	if queries := counts.Statements(); queries > 1 {
		return fmt.Errorf("right counts, with %d queries for 100 calls: make it at most 1", queries)
	}
	t.Logf("100 calls one after another, queries: %d (the naive catalog: 100)", counts.Statements())

	if catalog, err = newCatalog(db); err != nil {
		return fmt.Errorf("your NewCatalog: %w", err)
	}
	ctx, counts = pgtest.CountQueries(context.Background())
	results, errs := callWhileLocked(t, db, "products", 50, func() (map[string]int64, error) { return catalog.CategoryCounts(ctx) })
	for i := range results {
		if errs[i] != nil {
			return fmt.Errorf("your CategoryCounts, caller %d of 50 at once: %w", i, errs[i])
		}
		if diff := cmp.Diff(want, results[i]); diff != "" {
			return fmt.Errorf("caller %d of 50 at once: your counts differ from the naive ones (-naive +yours):\n%s", i, diff)
		}
	}
	if queries := counts.Statements(); queries > 1 {
		return fmt.Errorf("%d queries for 50 callers at once, while the first query waited: every caller found the cache empty and filled it; "+
			"guard the cache with a mutex held while it loads (or use a cache whose loader runs once), and run this check with -race", queries)
	}
	t.Logf("50 calls at once, while the first query waits, queries: %d", counts.Statements())

	return checkMenuAge(t, db, newCatalog)
}

// checkMenuAge checks, on a fake clock, that a catalog made by newCatalog
// shows a category added after its first call once menuAge has passed.
func checkMenuAge(t *testing.T, db *pgxpool.Pool, newCatalog newCatalogFunc) error {
	// A pool of one connection, opened and connected outside the bubble, so
	// that nothing inside it dials or starts the pool's goroutines.
	cfg := db.Config()
	cfg.MaxConns, cfg.MinConns = 1, 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return fmt.Errorf("a pool for the clock check: %w", err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(context.Background()); err != nil {
		return fmt.Errorf("a pool for the clock check: %w", err)
	}
	var checkErr error
	synctest.Test(t, func(t *testing.T) {
		catalog, err := newCatalog(pool)
		if err != nil {
			checkErr = fmt.Errorf("your NewCatalog: %w", err)
			return
		}
		checkErr = menuAfter(t, pool, catalog)
		// The answer's cache is dropped here; a goroutine of its own (a
		// cache's periodic clean-up) must return before the bubble ends.
		for range 3 {
			synctest.Wait()
			runtime.GC()
			time.Sleep(time.Second)
		}
	})
	return checkErr
}

func menuAfter(t *testing.T, db *pgxpool.Pool, catalog categoryCounter) error {
	ctx := context.Background()
	before, err := catalog.CategoryCounts(ctx)
	if err != nil {
		return fmt.Errorf("your CategoryCounts, before a new category: %w", err)
	}
	const addKite = `INSERT INTO products (id, name, category, price_cents)
		SELECT max(id) + 1, 'Exercise 6 kite', 'kites', 1999 FROM products`
	if _, err := db.Exec(ctx, addKite); err != nil {
		return fmt.Errorf("add a product in a new category: %w", err)
	}
	time.Sleep(menuAge) // on the bubble's clock: at once
	after, err := catalog.CategoryCounts(ctx)
	if err != nil {
		return fmt.Errorf("your CategoryCounts, %v after a new category: %w", menuAge, err)
	}
	if after["kites"] != 1 {
		return fmt.Errorf("%v after a product was added in the new category \"kites\", your menu still lacks it (%d categories, %d at the first call): "+
			"your cache never expires; keep the answer for a TTL, the promise that a menu may be up to a minute old",
			menuAge, len(after), len(before))
	}
	t.Logf("a new category shows %v later (fake clock)", menuAge)
	return nil
}

func TestExercise06CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise06(t, pgtest.ShopClone(t, shop.Small), func(db *pgxpool.Pool) (categoryCounter, error) { return naivecaching.NewCatalog(db) })
	require.ErrorContains(t, err, "100 queries")
	t.Log(err)
}

func TestExercise06CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		newCatalog newCatalogFunc
		want       string
	}{
		{"the cache's own map", func(db *pgxpool.Pool) (categoryCounter, error) { return &sharedMapCatalog{db: db}, nil }, "you returned your cache's own map"},
		{"no mutex", func(db *pgxpool.Pool) (categoryCounter, error) { return &unlockedCatalog{db: db}, nil }, "50 queries for 50 callers at once"},
		{"never expires", func(db *pgxpool.Pool) (categoryCounter, error) { return &foreverCatalog{db: db}, nil }, "your cache never expires"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if raceEnabled && tc.name == "no mutex" && os.Getenv(raceChildEnv) == "" {
				// Its data race would fail this very test binary: the race
				// detector's report is the verdict, so read it from a child.
				unlockedCacheUnderRace(t)
				return
			}
			err := checkExercise06(t, pgtest.ShopClone(t, shop.Small), tc.newCatalog)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

// raceChildEnv, set, tells a test binary built with -race that it is the
// child unlockedCacheUnderRace started.
const raceChildEnv = "WVS_EXERCISE06_RACE_CHILD"

// unlockedCacheUnderRace runs the "no mutex" wrong answer in a child of this
// -race binary, on the same server, and checks that the race detector and the
// check both report it.
func unlockedCacheUnderRace(t *testing.T) {
	child := exec.Command(os.Args[0], "-test.run=^TestExercise06CheckFailsOnWrongAnswers$/^no_mutex$", "-test.v", "-test.count=1")
	child.Env = append(os.Environ(), raceChildEnv+"=1", workshopenv.DatabaseURL+"="+pgtest.ServerURL(t))
	out, err := child.CombinedOutput()
	require.Error(t, err, "the cache without a mutex passed under -race:\n%s", out)
	require.Contains(t, string(out), "WARNING: DATA RACE")
	require.Contains(t, string(out), "50 queries for 50 callers at once")
}

func TestExercise06CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise06(t, pgtest.ShopClone(t, shop.Small), func(db *pgxpool.Pool) (categoryCounter, error) { return scalablecaching.NewCatalog(db) }))
}

type statusCounter interface {
	OrdersPerStatus(ctx context.Context) (map[string]int64, error)
}

// checkExercise07 says what is still wrong with an answer to lesson 7's
// exercise, or nil when it is done: 50 callers who arrive while the query runs
// share it, get the right counts, each a map of its own, and still get them
// when the caller whose context runs the query leaves. db must be a copy of
// the shop: the check locks the orders table while the callers arrive.
func checkExercise07(t *testing.T, db *pgxpool.Pool, dashboard statusCounter) error {
	const callers = 50
	naive, err := naivestampede.NewDashboard(db)
	if err != nil {
		return fmt.Errorf("the naive dashboard to compare with: %w", err)
	}
	want, err := naive.OrdersPerStatus(context.Background())
	if err != nil {
		return fmt.Errorf("the counts to compare with: %w", err)
	}
	counted, counts := pgtest.CountQueries(context.Background())
	// Each caller has a context of its own, which records the queries run on
	// it: the one that records the shared query is the caller whose context
	// it runs on, and that caller leaves while the query waits.
	ctxs, cancels, recordings := make([]context.Context, callers), make([]context.CancelFunc, callers), make([]*pgtest.Recording, callers)
	for i := range callers {
		var ctx context.Context
		ctx, recordings[i] = pgtest.RecordQueries(counted)
		ctxs[i], cancels[i] = context.WithCancel(ctx)
		t.Cleanup(cancels[i])
	}
	var release func()
	t.Cleanup(func() { // registered before the lock is taken
		if release != nil {
			release()
		}
	})
	release = lockTable(t, db, "orders")
	results, errs := make([]map[string]int64, callers), make([]error, callers)
	var arrived, returned sync.WaitGroup
	for i := range callers {
		arrived.Add(1)
		returned.Go(func() {
			arrived.Done()
			results[i], errs[i] = dashboard.OrdersPerStatus(ctxs[i])
		})
	}
	arrived.Wait()
	waitForLockWaiters(t, db, 1)
	time.Sleep(stragglerGrace)
	leader := slices.IndexFunc(recordings, func(r *pgtest.Recording) bool { return len(r.Queries()) > 0 })
	if leader >= 0 {
		cancels[leader]()
	}
	release()
	release = nil
	returned.Wait()
	failed := 0
	for i := range results {
		switch {
		case i == leader:
			continue // it left: an error or the counts, both are right
		case errs[i] != nil:
			failed++
		default:
			if diff := cmp.Diff(want, results[i]); diff != "" {
				return fmt.Errorf("caller %d: your counts differ from the naive ones (-naive +yours):\n%s", i, diff)
			}
		}
	}
	if failed > 0 {
		first := 0
		for first == leader || errs[first] == nil {
			first++
		}
		return fmt.Errorf("%d of %d callers failed when the caller whose context ran the shared query left (caller %d: %v): "+
			"the query ran on the first caller's context; run it on context.WithoutCancel(ctx), and let each caller wait on its own (DoChan)",
			failed, callers-1, first, errs[first])
	}
	if queries := counts.Statements(); queries > 1 {
		return fmt.Errorf("right counts, with %d queries for %d callers at once: make it 1", queries, callers)
	}
	other := (leader + 1) % callers
	results[other]["not a status"] = 1
	for i := range results {
		if i != other && i != leader && results[i]["not a status"] == 1 {
			return fmt.Errorf("caller %d changed its map, and caller %d's changed too: callers share one map; give each caller a copy (maps.Clone)", other, i)
		}
	}
	t.Logf("%d callers at once, the first leaving while the query waits: queries: %d, answers: %d", callers, counts.Statements(), callers-1)
	return nil
}

func TestExercise07CheckFailsOnTheStart(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	dashboard, err := naivestampede.NewDashboard(db)
	require.NoError(t, err)
	err = checkExercise07(t, db, dashboard)
	require.ErrorContains(t, err, "50 queries")
	t.Log(err)
}

func TestExercise07CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dashboard func(db *pgxpool.Pool) statusCounter
		want      string
	}{
		{"the first caller's context", func(db *pgxpool.Pool) statusCounter { return &firstContextDashboard{db: db} }, "the query ran on the first caller's context"},
		{"one map for every caller", func(db *pgxpool.Pool) statusCounter { return &sharedMapDashboard{db: db} }, "callers share one map"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			err := checkExercise07(t, db, tc.dashboard(db))
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise07CheckPassesOnTheAnswer(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	dashboard, err := scalablestampede.NewDashboard(db)
	require.NoError(t, err)
	require.NoError(t, checkExercise07(t, db, dashboard))
}

type paymentsInCurrencyFunc func(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error)

// checkExercise08 says what is still wrong with an answer to lesson 8's
// exercise, or nil when it is done: the euro payments for "EUR", and an error,
// with no payments, for SQL passed as a currency. db must be a copy of the
// shop: the check writes three payments.
func checkExercise08(t testing.TB, db *pgxpool.Pool, paymentsIn paymentsInCurrencyFunc) error {
	ctx := context.Background()
	const insertPayments = `INSERT INTO payments (user_id, amount_cents, currency)
		VALUES (1, 1250, 'EUR'), (2, 999, 'USD'), (3, 40000, 'EUR')`
	if _, err := db.Exec(ctx, insertPayments); err != nil {
		return fmt.Errorf("the payments to report on: %w", err)
	}
	recorded, queries := pgtest.RecordQueries(ctx)
	euros, err := paymentsIn(recorded, db, "EUR")
	if err != nil {
		return fmt.Errorf("your PaymentsInCurrency(EUR): %w", err)
	}
	amounts := make([]int64, len(euros))
	for i, p := range euros {
		amounts[i] = p.AmountCents
	}
	if diff := cmp.Diff([]int64{1250, 40000}, amounts); diff != "" {
		return fmt.Errorf("PaymentsInCurrency(EUR) returned %+v, want the payments of 12.50 and 400.00 EUR, oldest first (amounts in cents, -want +yours):\n%s", euros, diff)
	}
	for _, q := range queries.Queries() {
		if strings.Contains(q.SQL, "'EUR'") {
			return fmt.Errorf("right payments, but the currency is pasted into your SQL (%s): send it as a parameter, apart from the statement; "+
				"there is no input trusted enough to become SQL", strings.Join(strings.Fields(q.SQL), " "))
		}
	}
	const hostile = "EUR' OR 'x'='x"
	leaked, err := paymentsIn(ctx, db, hostile)
	if len(leaked) > 0 {
		return fmt.Errorf("PaymentsInCurrency(%q) returned %d payments, %+v: the input became SQL", hostile, len(leaked), leaked)
	}
	if err == nil {
		return fmt.Errorf("PaymentsInCurrency(%q) returned %#v and no error: the SQL is safe, but say what is wrong with the currency: not a currency the shop takes", hostile, leaked)
	}
	t.Logf("EUR: 2 payments, the currency sent as a parameter; %q: refused (%v)", hostile, err)
	return nil
}

func TestExercise08CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise08(t, pgtest.ShopClone(t, shop.Small), naivevalidation.PaymentsInCurrency)
	require.ErrorContains(t, err, "the currency is pasted into your SQL")
	t.Log(err)
}

func TestExercise08CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		paymentsIn paymentsInCurrencyFunc
		want       string
	}{
		{"parameters, no check", paymentsWithoutCheck, "and no error: the SQL is safe, but say what is wrong with the currency"},
		{"quotes doubled by hand", paymentsQuotesDoubled, "the currency is pasted into your SQL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise08(t, pgtest.ShopClone(t, shop.Small), tc.paymentsIn)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise08CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise08(t, pgtest.ShopClone(t, shop.Small), scalablevalidation.PaymentsInCurrency))
}

type newPayerFunc func(db *pgxpool.Pool, gw *gateway.Client) payer

// checkExercise09 says what is still wrong with an answer to lesson 9's
// exercise, or nil when it is done: fifty concurrent calls with one key make
// one charge and one payment row, and each caller gets that payment or an
// error saying it is in progress; a payment whose first reply was lost is
// charged once. Each part runs on a copy of the shop of its own.
func checkExercise09(t *testing.T, newPayments newPayerFunc) error {
	const callers = 50
	gw := startGateway(t)
	gw.SetFaults(gatewaytest.Faults{Latency: 100 * time.Millisecond})
	db := pgtest.ShopClone(t, shop.Small)
	var lastBefore int64
	if err := db.QueryRow(context.Background(), "SELECT coalesce(max(id), 0) FROM payments").Scan(&lastBefore); err != nil {
		return fmt.Errorf("the payments before: %w", err)
	}
	payments := newPayments(db, gw.Client())
	results, errs, _, wait := callTogether(callers, func() (shop.Payment, error) {
		return payments.Pay(context.Background(), "double-click", paymentFor(1))
	})
	wait()
	charges := gw.Charges()
	if len(charges) != 1 {
		return fmt.Errorf("%d charges for %d concurrent calls with one key: make it 1", len(charges), callers)
	}
	const paymentsAfter = `SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE id > $1 ORDER BY id`
	rows, err := db.Query(context.Background(), paymentsAfter, lastBefore)
	if err != nil {
		return fmt.Errorf("the payments recorded: %w", err)
	}
	recorded, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Payment, error) {
		var p shop.Payment
		err := row.Scan(&p.ID, &p.UserID, &p.AmountCents, &p.Currency, &p.Status, &p.ChargeID)
		return p, err
	})
	if err != nil {
		return fmt.Errorf("the payments recorded: %w", err)
	}
	if len(recorded) != 1 {
		return fmt.Errorf("%d payment rows for %d concurrent calls with one key, and 1 charge: the gateway charged once because it got the key, "+
			"but your table says %d payments; one key, one row: let the unique key on idempotency_key decide which call pays (INSERT … ON CONFLICT), not a check before it",
			len(recorded), callers, len(recorded))
	}
	paid := 0
	for i := range results {
		var pgErr *pgconn.PgError
		switch {
		case errors.As(errs[i], &pgErr) && pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("caller %d of %d got the database's error %q: a caller whose key is being paid gets the first call's payment, or an error saying it is in progress",
				i, callers, pgErr.Message)
		case errs[i] != nil:
			continue
		case results[i].ID != recorded[0].ID || results[i].ChargeID != charges[0].ID:
			return fmt.Errorf("caller %d of %d got payment %d charged as %q, but the table holds payment %d and the gateway made %q: one key, one payment",
				i, callers, results[i].ID, results[i].ChargeID, recorded[0].ID, charges[0].ID)
		default:
			paid++
		}
	}
	if paid == 0 {
		return fmt.Errorf("none of %d concurrent calls with one key got its payment (the first error: %v); the call that pays returns it", callers, errs[0])
	}
	// How many got which depends on the scheduler: not a figure to pin.
	t.Logf("%d concurrent calls with one key: 1 charge, 1 payment row; every caller got that payment, or an error (in progress)", callers)

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
	t.Logf("a payment whose first reply was lost: %d requests, 1 charge", gw.Requests())
	return nil
}

func TestExercise09CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) payer { return newRetryingPayments(t, db, gw) })
	require.ErrorContains(t, err, "50 charges for 50 concurrent calls")
	t.Log(err)
}

func TestExercise09CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		pay  newPayerFunc
		want string
	}{
		{"key merely forwarded to the gateway", func(db *pgxpool.Pool, gw *gateway.Client) payer { return &keyForwardingPayments{db: db, gateway: gw} },
			"50 payment rows for 50 concurrent calls with one key, and 1 charge"},
		{"check, then insert", func(db *pgxpool.Pool, gw *gateway.Client) payer { return &checkThenInsertPayments{db: db, gateway: gw} },
			"got the database's error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise09(t, tc.pay)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise09CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) payer {
		return newFastRetryPayments(t, db, gw)
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
	requests := gw.Requests()
	if requests > maxRequests {
		return fmt.Errorf("%d requests reached the hung gateway for %d payments: each waited out its timeout; put a breaker in front of the gateway, which opens after a few failures and stops calling it (at most %d requests)",
			requests, payments, maxRequests)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d payments failed while the gateway was down, the first with %v: a payment the breaker stops is lost; queue it in the outbox instead (payment_outbox, in the same transaction as its row)",
			len(failed), payments, failed[0])
	}
	if statuses := paymentStatuses(t, db); statuses[shop.PaymentQueued] != payments {
		return fmt.Errorf("the payments table holds %v: want %d payments queued", statuses, payments)
	}
	gw.SetFaults(gatewaytest.Faults{})
	relay := newRelay(t, db, gw.Client(), time.Second, newBreaker(t, 3, time.Minute))
	if _, err := relay.SendQueued(context.Background()); err != nil {
		return fmt.Errorf("the lesson's relay, on your outbox: %w", err)
	}
	if charges, duplicates := len(gw.Charges()), gw.Duplicates(); charges != payments || duplicates != 0 {
		return fmt.Errorf("the relay made %d charges (%d duplicates) for %d queued payments", charges, duplicates, payments)
	}
	t.Logf("%d payments into a hung gateway: %d requests reached it, %d queued; then the relay charged each once", payments, requests, payments)
	return nil
}

func TestExercise10CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) payer {
		return newNaivePayments(t, db, gw, timeout)
	})
	require.ErrorContains(t, err, "60 requests reached the hung gateway")
	t.Log(err)
}

func TestExercise10CheckFailsOnWrongAnswers(t *testing.T) {
	t.Run("an outbox without a breaker", func(t *testing.T) {
		err := checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) payer {
			return newGuardedPayments(t, db, gw, timeout, alwaysClosed{})
		})
		require.ErrorContains(t, err, "60 requests reached the hung gateway for 20 payments")
		t.Log(err)
	})
	t.Run("a breaker without an outbox", func(t *testing.T) {
		err := checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) payer {
			return &breakerOnlyPayments{db: db, gateway: gw, timeout: timeout, breaker: newBreaker(t, 3, time.Minute)}
		})
		require.ErrorContains(t, err, "20 of 20 payments failed while the gateway was down")
		t.Log(err)
	})
}

func TestExercise10CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) payer {
		return newGuardedPayments(t, db, gw, timeout, newBreaker(t, 3, time.Minute))
	}))
}

// closingWorkloads is lesson 11's exercise: workloads that close what they open.
type closingWorkloads interface {
	workloads
	Close()
}

// checkExercise11 says what is still wrong with an answer to lesson 11's
// exercise, or nil when it is done: while search is stuck, a user's orders and
// payments are served within 300 ms, and right; a search gives up at a
// deadline of its own; and Close closes every connection the answer opened.
func checkExercise11(t *testing.T, newShop func(db *pgxpool.Pool) (closingWorkloads, error)) error {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	naive, err := naivebulkhead.New(db)
	if err != nil {
		return fmt.Errorf("the naive shop to compare with: %w", err)
	}
	wantOrders, err := naive.RecentOrders(ctx, 1)
	if err != nil {
		return fmt.Errorf("the orders to compare with: %w", err)
	}
	// The pool handed to New, and every pool opened from its Config, names
	// itself to PostgreSQL, so that the check can count their connections.
	cfg := db.Config()
	cfg.MaxConns = sharedPoolSize
	cfg.ConnConfig.RuntimeParams["application_name"] = fmt.Sprintf("exercise11-%d", time.Now().UnixNano())
	given, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("the pool for your New: %w", err)
	}
	t.Cleanup(given.Close)
	answer, err := newShop(given)
	if err != nil {
		return fmt.Errorf("your New: %w", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			answer.Close()
		}
	})
	if err := whileSearchIsStuck(t, db, answer, wantOrders); err != nil {
		return err
	}
	answer.Close()
	closed = true
	given.Close()
	const openConnections = `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`
	var open int
	for range 40 { // a closed connection's backend exits soon after, not at once
		if err := db.QueryRow(ctx, openConnections, cfg.ConnConfig.RuntimeParams["application_name"]).Scan(&open); err != nil {
			return fmt.Errorf("count the connections left open: %w", err)
		}
		if open == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if open > 0 {
		return fmt.Errorf("%d connections your Shop opened are still open after Close: close every pool you opened", open)
	}
	t.Logf("after Close: no connection of your Shop left open")
	return nil
}

// whileSearchIsStuck checks that answer serves orders and payments, and fails
// a search at its own deadline, while 16 searches wait on a locked products table.
func whileSearchIsStuck(t *testing.T, db *pgxpool.Pool, answer closingWorkloads, wantOrders []shop.Order) error {
	// A shop that has served before: its pools hold connections, so the
	// deadline below is spent on waiting, not on connecting.
	if _, err := answer.RecentOrders(context.Background(), 1); err != nil {
		return fmt.Errorf("your RecentOrders(1), before search got stuck: %w", err)
	}
	if _, err := answer.UserPayments(context.Background(), 1); err != nil {
		return fmt.Errorf("your UserPayments(1), before search got stuck: %w", err)
	}
	stop := stickSearch(t, db, answer, 1)
	defer stop()
	time.Sleep(4 * stragglerGrace) // the stuck searches take what they can

	ctx, cancel := context.WithTimeout(context.Background(), requestDeadline)
	defer cancel()
	orders, err := answer.RecentOrders(ctx, 1)
	if err != nil {
		return fmt.Errorf("orders failed while search was stuck: %w", err)
	}
	if diff := cmp.Diff(wantOrders, orders); diff != "" {
		return fmt.Errorf("your RecentOrders(1) differs from the naive one (-naive +yours):\n%s", diff)
	}
	if _, err := answer.UserPayments(ctx, 1); err != nil {
		return fmt.Errorf("payments failed while search was stuck: %w", err)
	}
	t.Logf("while search was stuck: orders and payments served within %v", requestDeadline)

	const patience = 3 * time.Second
	searchCtx, cancelSearch := context.WithTimeout(context.Background(), patience)
	defer cancelSearch()
	_, err = answer.SearchProducts(searchCtx, "steel")
	if err == nil {
		return fmt.Errorf("a search succeeded while the products table was locked")
	}
	if searchCtx.Err() != nil {
		return fmt.Errorf("a search while search was stuck waited until its caller gave up after %v (%v): give each workload a deadline of its own, so that a stuck call fails fast and gives its connection back",
			patience, err)
	}
	t.Logf("a search while search was stuck: failed at its own deadline (%v)", err)
	return nil
}

func TestExercise11CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) {
		served, err := naivebulkhead.New(db)
		return naiveClosing{served}, err
	})
	require.ErrorContains(t, err, "orders failed while search was stuck")
	t.Log(err)
}

func TestExercise11CheckFailsOnWrongAnswers(t *testing.T) {
	t.Run("pools without deadlines", func(t *testing.T) {
		err := checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) { return newPoolsWithoutDeadlines(db) })
		require.ErrorContains(t, err, "give each workload a deadline of its own")
		t.Log(err)
	})
	t.Run("pools never closed", func(t *testing.T) {
		err := checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) {
			pools, err := scalablebulkhead.OpenPools(context.Background(), db.Config(), scalablebulkhead.DefaultSizes)
			if err != nil {
				return nil, err
			}
			t.Cleanup(pools.Close) // the wrong answer leaks them; the test does not
			served, err := scalablebulkhead.New(pools, scalablebulkhead.DefaultTimeouts)
			return unclosingShop{served}, err
		})
		require.ErrorContains(t, err, "still open after Close")
		t.Log(err)
	})
}

func TestExercise11CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) {
		pools, err := scalablebulkhead.OpenPools(context.Background(), db.Config(), scalablebulkhead.DefaultSizes)
		if err != nil {
			return nil, err
		}
		served, err := scalablebulkhead.New(pools, scalablebulkhead.DefaultTimeouts)
		if err != nil {
			pools.Close()
			return nil, err
		}
		return scalableClosing{served, pools}, nil
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
