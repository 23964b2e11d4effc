package pagination

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ListFeedPage returns up to limit posts of the feed, newest first, starting
// at the page token ("" for the first page), and the token of the next page
// ("" after the last).
//
// The token is an offset. A post published while a reader pages pushes every
// later post one place down, so the reader's next page starts with the post
// that ended the last one: they see it twice.
//
// A limit outside 1 to shop.MaxPageSize, or a token that is not an offset
// written as the feed writes it, gets an error that wraps shop.ErrInvalidPage.
func ListFeedPage(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, "", fmt.Errorf("feed page %s: %w", shop.Quote(token), err)
	}
	offset := 0
	if token != "" {
		var err error
		if offset, err = strconv.Atoi(token); err != nil || offset < 0 || strconv.Itoa(offset) != token {
			return nil, "", fmt.Errorf("feed page %s: %w: not a page token", shop.Quote(token), shop.ErrInvalidPage)
		}
	}
	// Uses posts_created_at_idx, reading offset entries before the page.
	const feedPageQuery = `SELECT id, author_id, title, created_at FROM posts
		ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2`
	rows, err := db.Query(ctx, feedPageQuery, limit+1, offset)
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
	return posts[:limit], strconv.Itoa(offset + limit), nil // a next page exists, so offset+limit fits
}
