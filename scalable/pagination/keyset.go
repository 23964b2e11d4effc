package pagination

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Cursor marks where a page of orders ended: the last order's sort key, in
// the list of the user it belongs to. Orders sort by (CreatedAt, ID), newest
// first; the ID breaks ties between orders placed in the same microsecond.
type Cursor struct {
	UserID    int64 // whose list; a cursor is refused for any other
	CreatedAt time.Time
	ID        int64
}

// start sorts before every order: the cursor of the first page.
var start = Cursor{CreatedAt: time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC), ID: math.MaxInt64}

// ListUserOrdersAfter returns up to limit of the user's orders that sort after
// the cursor, newest first, with their items, and the cursor of the next page:
// nil on the first page's request, nil in the answer on the last page.
//
// It seeks in the index to the cursor and reads limit+1 orders (the extra one
// says whether a next page exists), whatever the page's depth. No total, no
// jumping to page 500: keyset trades those for a cost that does not grow.
//
// A limit outside 1 to shop.MaxPageSize gets an error that wraps
// shop.ErrInvalidPage; a cursor from another user's list, one that wraps
// ErrInvalidCursor.
func ListUserOrdersAfter(ctx context.Context, db *pgxpool.Pool, userID int64, after *Cursor, limit int) ([]shop.Order, *Cursor, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, nil, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	if after == nil {
		after = &start
	} else if after.UserID != userID {
		return nil, nil, fmt.Errorf("orders of user %d: %w: the cursor is a position in another user's list", userID, ErrInvalidCursor)
	}
	// Uses orders_user_id_created_at_idx (user_id, created_at DESC, id DESC):
	// the row comparison is an index condition, so the scan starts at the
	// cursor. Its ORDER BY must match the index, column for column. The page
	// is a page of orders: LEFT JOIN keeps an order that has no items.
	const ordersAfterQuery = `WITH page AS (
			SELECT id, user_id, status, created_at FROM orders
			WHERE user_id = $1 AND (created_at, id) < ($2, $3)
			ORDER BY created_at DESC, id DESC
			LIMIT $4
		)
		SELECT o.id, o.user_id, o.status, o.created_at,
			i.line_no, i.quantity, i.price_cents, p.id, p.name, p.category, p.price_cents
		FROM page o
		LEFT JOIN order_items i ON i.order_id = o.id
		LEFT JOIN products p ON p.id = i.product_id
		ORDER BY o.created_at DESC, o.id DESC, i.line_no`
	rows, err := db.Query(ctx, ordersAfterQuery, userID, after.CreatedAt, after.ID, limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("orders of user %d after order %d: %w", userID, after.ID, err)
	}
	orders, err := collectOrders(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("orders of user %d after order %d: %w", userID, after.ID, err)
	}
	if len(orders) <= limit {
		return orders, nil, nil
	}
	orders = orders[:limit]
	last := orders[limit-1]
	return orders, &Cursor{UserID: userID, CreatedAt: last.CreatedAt, ID: last.ID}, nil
}
