package pagination

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ListUserOrdersPage returns page (from 1) of the user's orders, newest
// first, perPage orders a page with their items, and how many orders the user
// has in all.
//
// It is ListUserOrdersAtOffset and a count. The count reads every order of
// the user, on every page: at shallow pages it is most of the cost.
func ListUserOrdersPage(ctx context.Context, db *pgxpool.Pool, userID int64, page, perPage int) (shop.OrdersPage, error) {
	orders, err := ListUserOrdersAtOffset(ctx, db, userID, page, perPage)
	if err != nil {
		return shop.OrdersPage{}, err
	}
	// Uses orders_user_id_created_at_idx, every entry of the user.
	const countOrdersQuery = `SELECT count(*) FROM orders WHERE user_id = $1`
	var total int64
	if err := db.QueryRow(ctx, countOrdersQuery, userID).Scan(&total); err != nil {
		return shop.OrdersPage{}, fmt.Errorf("count orders of user %d: %w", userID, err)
	}
	return shop.OrdersPage{Orders: orders, Total: total}, nil
}

// ListUserOrdersAtOffset returns page (from 1) of the user's orders, newest
// first, perPage orders a page with their items, and no total.
//
// It pages the orders first, then joins their items (a LEFT JOIN: an order
// without items is still an order), so an order is never cut in two. But
// OFFSET still reads and throws away every order before the page: page 1,000
// reads a thousand pages. A page size outside 1 to shop.MaxPageSize, or a page
// whose offset overflows, gets an error that wraps shop.ErrInvalidPage.
func ListUserOrdersAtOffset(ctx context.Context, db *pgxpool.Pool, userID int64, page, perPage int) ([]shop.Order, error) {
	offset, err := shop.PageOffset(page, perPage)
	if err != nil {
		return nil, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	// Uses orders_user_id_created_at_idx, reading (page-1)*perPage entries
	// before the first it returns; then order_items_pkey for the page.
	const pageOfOrdersQuery = `WITH page AS (
			SELECT id, user_id, status, created_at FROM orders
			WHERE user_id = $1
			ORDER BY created_at DESC, id DESC
			LIMIT $2 OFFSET $3
		)
		SELECT o.id, o.user_id, o.status, o.created_at,
			i.line_no, i.quantity, i.price_cents, p.id, p.name, p.category, p.price_cents
		FROM page o
		LEFT JOIN order_items i ON i.order_id = o.id
		LEFT JOIN products p ON p.id = i.product_id
		ORDER BY o.created_at DESC, o.id DESC, i.line_no`
	rows, err := db.Query(ctx, pageOfOrdersQuery, userID, perPage, offset)
	if err != nil {
		return nil, fmt.Errorf("orders of user %d, page %d: %w", userID, page, err)
	}
	orders, err := collectOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("orders of user %d, page %d: %w", userID, page, err)
	}
	return orders, nil
}
