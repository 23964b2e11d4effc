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
// It asks for the posts, then for each post its author and its comment count:
// 1+2N queries for N posts, 101 for a feed of 50.
//
// A limit outside 1 to shop.MaxPageSize is refused with shop.ErrInvalidPage.
func ListPosts(ctx context.Context, db *pgxpool.Pool, limit int) ([]shop.FeedPost, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, fmt.Errorf("latest posts: %w", err)
	}
	// Uses posts_created_at_idx (created_at DESC, id DESC).
	const postsQuery = `SELECT id, author_id, title, created_at FROM posts
		ORDER BY created_at DESC, id DESC LIMIT $1`
	rows, err := db.Query(ctx, postsQuery, limit)
	if err != nil {
		return nil, fmt.Errorf("latest %d posts: %w", limit, err)
	}
	posts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Post, error) {
		var p shop.Post
		err := row.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("latest %d posts: %w", limit, err)
	}

	// Uses users_pkey.
	const authorQuery = `SELECT id, name, email, phone, created_at FROM users WHERE id = $1`
	// Uses comments_post_id_idx.
	const commentCountQuery = `SELECT count(*) FROM comments WHERE post_id = $1`
	feed := make([]shop.FeedPost, 0, len(posts))
	for _, post := range posts {
		// Two more queries, and two more round trips, for every post.
		item := shop.FeedPost{Post: post}
		a := &item.Author
		if err := db.QueryRow(ctx, authorQuery, post.AuthorID).Scan(&a.ID, &a.Name, &a.Email, &a.Phone, &a.CreatedAt); err != nil {
			return nil, fmt.Errorf("author %d of post %d: %w", post.AuthorID, post.ID, err)
		}
		if err := db.QueryRow(ctx, commentCountQuery, post.ID).Scan(&item.CommentCount); err != nil {
			return nil, fmt.Errorf("comments of post %d: %w", post.ID, err)
		}
		feed = append(feed, item)
	}
	return feed, nil
}
