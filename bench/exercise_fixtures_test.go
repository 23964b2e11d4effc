package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// The wrong answers a trainee most often writes to each exercise, the ones
// its lesson warns about. The tests in exercises_test.go prove that each
// exercise's check fails on them, with a message that says what is wrong.

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
