package nplusone

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ListPostsWithComments returns what ListPosts returns, each post with its
// latest comments (at most perPost), newest first.
//
// It makes one query: a LATERAL join runs the per-post comment query inside
// the database, once per post of the page, and the rows come back together.
// (This is the reference answer to lesson 1's exercise.)
//
// A limit or perPost outside 1 to shop.MaxPageSize is refused with
// shop.ErrInvalidPage.
func ListPostsWithComments(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, fmt.Errorf("latest posts: %w", err)
	}
	if err := shop.CheckPageSize(perPost); err != nil {
		return nil, fmt.Errorf("latest comments of each post: %w", err)
	}
	// Uses posts_created_at_idx, users_pkey and comments_post_id_idx.
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
	rows, err := db.Query(ctx, feedWithCommentsQuery, limit, perPost)
	if err != nil {
		return nil, fmt.Errorf("latest %d posts with comments: %w", limit, err)
	}
	defer rows.Close()

	feed := []shop.FeedPostWithComments{}
	for rows.Next() {
		var item shop.FeedPostWithComments
		p, a := &item.Post, &item.Author
		var (
			commentID, commentAuthorID *int64 // NULL for a post without comments
			body                       *string
			commentedAt                *time.Time
		)
		err := rows.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt,
			&a.ID, &a.Name, &a.Email, &a.Phone, &a.CreatedAt, &item.CommentCount,
			&commentID, &commentAuthorID, &body, &commentedAt)
		if err != nil {
			return nil, fmt.Errorf("latest %d posts with comments: %w", limit, err)
		}
		if n := len(feed); n == 0 || feed[n-1].Post.ID != p.ID {
			item.LatestComments = []shop.Comment{}
			feed = append(feed, item)
		}
		if commentID == nil {
			continue
		}
		last := &feed[len(feed)-1]
		last.LatestComments = append(last.LatestComments, shop.Comment{
			ID: *commentID, PostID: p.ID, AuthorID: *commentAuthorID, Body: *body, CreatedAt: *commentedAt,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest %d posts with comments: %w", limit, err)
	}
	return feed, nil
}
