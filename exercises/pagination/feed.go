// Package pagination is lesson 2's exercise: yours to change.
//
// ListFeedPage below pages the feed with an offset in its page token. When a
// post is published while someone scrolls, they see a post twice. Make every
// post appear exactly once however many are published meanwhile, then check:
//
//	go test -tags exercise -run Exercise02 ./bench/pagination
//
// The check adds posts published in the same microsecond across a page
// boundary, posts whose ids are out of time order inside pages, and pages of
// posts a microsecond apart, then walks ten pages on a copy of the shop,
// publishing a post before each page; when a post is lost or repeated, it
// walks again with nothing published and says what it measured.
// One answer is in works-vs-scales/scalable/pagination.
package pagination

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/pagination"
	"works-vs-scales/shop"
)

// ListFeedPage returns up to limit posts of the feed, newest first, starting
// at the page token ("" for the first page), and the token of the next page
// ("" after the last).
func ListFeedPage(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	return naive.ListFeedPage(ctx, db, token, limit) // replace me
}
