package nplusone

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ListPosts returns the latest limit posts, newest first, each with its
// author and its number of comments.
//
// It makes one query. The comment count is a subquery per post rather than a
// GROUP BY over a join, so the database counts the comments of the posts on
// the page, not of every post before the LIMIT.
//
// A limit outside 1 to shop.MaxPageSize is refused with shop.ErrInvalidPage.
func ListPosts(ctx context.Context, db *pgxpool.Pool, limit int) ([]shop.FeedPost, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, fmt.Errorf("latest posts: %w", err)
	}
	// Uses posts_created_at_idx, users_pkey and comments_post_id_idx.
	const feedQuery = `SELECT p.id, p.author_id, p.title, p.created_at,
			u.id, u.name, u.email, u.phone, u.created_at,
			(SELECT count(*) FROM comments c WHERE c.post_id = p.id)
		FROM posts p JOIN users u ON u.id = p.author_id
		ORDER BY p.created_at DESC, p.id DESC LIMIT $1`
	rows, err := db.Query(ctx, feedQuery, limit)
	if err != nil {
		return nil, fmt.Errorf("latest %d posts: %w", limit, err)
	}
	feed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.FeedPost, error) {
		var item shop.FeedPost
		p, a := &item.Post, &item.Author
		err := row.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt,
			&a.ID, &a.Name, &a.Email, &a.Phone, &a.CreatedAt, &item.CommentCount)
		return item, err
	})
	if err != nil {
		return nil, fmt.Errorf("latest %d posts: %w", limit, err)
	}
	return feed, nil
}
