// Package nplusone is lesson 1's exercise: yours to change.
//
// The feed now shows each post's latest comments. ListPostsWithComments below
// works, through the naive version: 1+3N queries for N posts. Make it answer
// the same in at most two round trips, then check it:
//
//	go test -tags exercise -run Exercise01 ./bench/nplusone
//
// The check publishes a post nobody has commented on and one with a hundred
// comments, compares your feed with the naive one, and counts your round
// trips and the rows your queries return (-v prints them).
// One answer is in works-vs-scales/scalable/nplusone; try before you look.
package nplusone

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/nplusone"
	"works-vs-scales/shop"
)

// ListPostsWithComments returns the latest limit posts, newest first, each
// with its author, its number of comments and its latest comments (at most
// perPost), newest first.
func ListPostsWithComments(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	return naive.ListPostsWithComments(ctx, db, limit, perPost) // replace me
}
