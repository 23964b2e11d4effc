package nplusone

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ListPostsWithComments returns what ListPosts returns, each post with its
// latest comments (at most perPost), newest first.
//
// It builds on ListPosts and asks for each post's comments: 1+3N queries for
// N posts.
//
// A limit or perPost outside 1 to shop.MaxPageSize is refused with
// shop.ErrInvalidPage.
func ListPostsWithComments(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	if err := shop.CheckPageSize(perPost); err != nil {
		return nil, fmt.Errorf("latest comments of each post: %w", err)
	}
	feed, err := ListPosts(ctx, db, limit)
	if err != nil {
		return nil, err
	}
	// Uses comments_post_id_idx, then sorts the post's comments.
	const latestCommentsQuery = `SELECT id, post_id, author_id, body, created_at FROM comments
		WHERE post_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	result := make([]shop.FeedPostWithComments, 0, len(feed))
	for _, item := range feed {
		// One more query, and one more round trip, for every post.
		rows, err := db.Query(ctx, latestCommentsQuery, item.Post.ID, perPost)
		if err != nil {
			return nil, fmt.Errorf("comments of post %d: %w", item.Post.ID, err)
		}
		comments, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Comment, error) {
			var c shop.Comment
			err := row.Scan(&c.ID, &c.PostID, &c.AuthorID, &c.Body, &c.CreatedAt)
			return c, err
		})
		if err != nil {
			return nil, fmt.Errorf("comments of post %d: %w", item.Post.ID, err)
		}
		result = append(result, shop.FeedPostWithComments{FeedPost: item, LatestComments: comments})
	}
	return result, nil
}
