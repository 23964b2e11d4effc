package pagination

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ListFeedPage returns up to limit posts of the feed, newest first, starting
// at the page token ("" for the first page), and the token of the next page
// ("" after the last).
//
// The token is the last post's sort key, so a post published meanwhile lands
// before the reader's position and never shifts the pages after it. (This is
// the reference answer to lesson 2's exercise. Its token is readable, to keep
// it short; ListUserOrdersAfter's callers sign theirs with EncodeCursor.)
//
// A limit outside 1 to shop.MaxPageSize gets an error that wraps
// shop.ErrInvalidPage; a token the feed did not make, one that wraps
// ErrInvalidCursor.
func ListFeedPage(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, "", fmt.Errorf("feed page %s: %w", shop.Quote(token), err)
	}
	after := start
	if token != "" {
		var err error
		if after, err = parseFeedToken(token); err != nil {
			return nil, "", fmt.Errorf("feed page %s: %w", shop.Quote(token), err)
		}
	}
	// Uses posts_created_at_idx (created_at DESC, id DESC), starting at the token.
	const feedAfterQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE (created_at, id) < ($1, $2)
		ORDER BY created_at DESC, id DESC LIMIT $3`
	rows, err := db.Query(ctx, feedAfterQuery, after.CreatedAt, after.ID, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("feed page %s: %w", shop.Quote(token), err)
	}
	posts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Post, error) {
		var p shop.Post
		err := row.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt)
		return p, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("feed page %s: %w", shop.Quote(token), err)
	}
	if len(posts) <= limit {
		return posts, "", nil
	}
	last := posts[limit-1]
	return posts[:limit], feedToken(last.CreatedAt.UnixMicro(), last.ID), nil
}

// feedToken is the page token after the post with this sort key.
func feedToken(micros, id int64) string {
	return strconv.FormatInt(micros, 10) + "." + strconv.FormatInt(id, 10)
}

// parseFeedToken returns the position in a token feedToken made, or an error
// that wraps ErrInvalidCursor for anything else: signs, spaces, leading
// zeros, trailing bytes, a time outside the years the feed can hold, an id
// below 1. Only the canonical form is read, so one position has one token.
func parseFeedToken(token string) (Cursor, error) {
	micros, id, ok := strings.Cut(token, ".")
	if !ok {
		return Cursor{}, fmt.Errorf("%w: want <microseconds>.<post id>", ErrInvalidCursor)
	}
	m, errM := strconv.ParseInt(micros, 10, 64)
	i, errI := strconv.ParseInt(id, 10, 64)
	if errM != nil || errI != nil || feedToken(m, i) != token {
		return Cursor{}, fmt.Errorf("%w: want <microseconds>.<post id>, both plain decimal", ErrInvalidCursor)
	}
	if m < 0 || m > start.CreatedAt.UnixMicro() || i < 1 {
		return Cursor{}, fmt.Errorf("%w: no post has this position", ErrInvalidCursor)
	}
	return Cursor{CreatedAt: time.UnixMicro(m), ID: i}, nil
}
