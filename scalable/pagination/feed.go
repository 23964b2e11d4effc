package pagination

import (
	"context"
	"fmt"
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
func ListFeedPage(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	after := start
	if token != "" {
		var micros int64
		if _, err := fmt.Sscanf(token, "%d.%d", &micros, &after.ID); err != nil {
			return nil, "", fmt.Errorf("feed page %q: not a page token: %w", token, err)
		}
		after.CreatedAt = time.UnixMicro(micros)
	}
	// Uses posts_created_at_idx (created_at DESC, id DESC), starting at the token.
	const feedAfterQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE (created_at, id) < ($1, $2)
		ORDER BY created_at DESC, id DESC LIMIT $3`
	rows, err := db.Query(ctx, feedAfterQuery, after.CreatedAt, after.ID, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("feed page %q: %w", token, err)
	}
	posts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Post, error) {
		var p shop.Post
		err := row.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt)
		return p, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("feed page %q: %w", token, err)
	}
	if len(posts) <= limit {
		return posts, "", nil
	}
	last := posts[limit-1]
	return posts[:limit], fmt.Sprintf("%d.%d", last.CreatedAt.UnixMicro(), last.ID), nil
}
