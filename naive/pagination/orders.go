package pagination

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ListUserOrders returns all of the user's orders, newest first, each with
// its items.
//
// One query (lesson 1), but its answer grows with the user's history: 10
// orders in the demo, 10,000 for the best customer, every time the page loads.
func ListUserOrders(ctx context.Context, db *pgxpool.Pool, userID int64) ([]shop.Order, error) {
	// Uses orders_user_id_created_at_idx and order_items_pkey.
	const allOrdersQuery = `SELECT o.id, o.user_id, o.status, o.created_at,
			i.line_no, i.quantity, i.price_cents, p.id, p.name, p.category, p.price_cents
		FROM orders o
		LEFT JOIN order_items i ON i.order_id = o.id
		LEFT JOIN products p ON p.id = i.product_id
		WHERE o.user_id = $1
		ORDER BY o.created_at DESC, o.id DESC, i.line_no`
	rows, err := db.Query(ctx, allOrdersQuery, userID)
	if err != nil {
		return nil, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	orders, err := collectOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	return orders, nil
}

// ListUserOrdersPage returns page (from 1) of the user's orders, perPage rows
// a page, and how many rows there are in all.
//
// The pagination most code starts with: LIMIT and OFFSET on the query that
// already joins the items. It works while every order has one item. The page
// holds perPage item rows, not orders: an order with three items can start on
// one page and end on the next, and the total counts items, not orders.
func ListUserOrdersPage(ctx context.Context, db *pgxpool.Pool, userID int64, page, perPage int) (shop.OrdersPage, error) {
	offset, err := shop.PageOffset(page, perPage)
	if err != nil {
		return shop.OrdersPage{}, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	// Uses orders_user_id_created_at_idx and order_items_pkey.
	const pageOfRowsQuery = `SELECT o.id, o.user_id, o.status, o.created_at,
			i.line_no, i.quantity, i.price_cents, p.id, p.name, p.category, p.price_cents
		FROM orders o
		LEFT JOIN order_items i ON i.order_id = o.id
		LEFT JOIN products p ON p.id = i.product_id
		WHERE o.user_id = $1
		ORDER BY o.created_at DESC, o.id DESC, i.line_no
		LIMIT $2 OFFSET $3`
	const countRowsQuery = `SELECT count(*) FROM orders o LEFT JOIN order_items i ON i.order_id = o.id WHERE o.user_id = $1`

	rows, err := db.Query(ctx, pageOfRowsQuery, userID, perPage, offset)
	if err != nil {
		return shop.OrdersPage{}, fmt.Errorf("orders of user %d, page %d: %w", userID, page, err)
	}
	orders, err := collectOrders(rows)
	if err != nil {
		return shop.OrdersPage{}, fmt.Errorf("orders of user %d, page %d: %w", userID, page, err)
	}
	var total int64
	if err := db.QueryRow(ctx, countRowsQuery, userID).Scan(&total); err != nil {
		return shop.OrdersPage{}, fmt.Errorf("count orders of user %d: %w", userID, err)
	}
	return shop.OrdersPage{Orders: orders, Total: total}, nil
}

// collectOrders reads rows of an order left-joined to its items, ordered by
// order, into orders with their items. An order without items comes as one
// row whose item columns are NULL: it gets an empty list of items, as lesson
// 1 returns it.
func collectOrders(rows pgx.Rows) ([]shop.Order, error) {
	defer rows.Close()
	orders := []shop.Order{}
	for rows.Next() {
		var o shop.Order
		var lineNo, quantity *int32
		var price, productID, productPrice *int64
		var productName, category *string
		err := rows.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt,
			&lineNo, &quantity, &price, &productID, &productName, &category, &productPrice)
		if err != nil {
			return nil, err
		}
		if n := len(orders); n == 0 || orders[n-1].ID != o.ID {
			o.Items = []shop.OrderItem{}
			orders = append(orders, o)
		}
		if lineNo == nil {
			continue // the order has no items
		}
		last := &orders[len(orders)-1]
		last.Items = append(last.Items, shop.OrderItem{
			LineNo:     *lineNo,
			Quantity:   *quantity,
			PriceCents: *price,
			Product:    shop.Product{ID: *productID, Name: *productName, Category: *category, PriceCents: *productPrice},
		})
	}
	return orders, rows.Err()
}
