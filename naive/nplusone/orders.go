package nplusone

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// GetUserOrders returns the user with the given id and all of their orders,
// newest first, each with its items in line order.
//
// It asks for the user, then the orders, then each order's items: 2+N queries
// for N orders.
func GetUserOrders(ctx context.Context, db *pgxpool.Pool, userID int64) (shop.UserOrders, error) {
	// Uses users_pkey.
	const userQuery = `SELECT id, name, email, phone, created_at FROM users WHERE id = $1`
	var user shop.User
	err := db.QueryRow(ctx, userQuery, userID).Scan(&user.ID, &user.Name, &user.Email, &user.Phone, &user.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, shop.ErrUserNotFound)
	}
	if err != nil {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: get user: %w", userID, err)
	}

	// Uses orders_user_id_created_at_idx (user_id, created_at DESC, id DESC).
	const ordersQuery = `SELECT id, user_id, status, created_at FROM orders
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC`
	rows, err := db.Query(ctx, ordersQuery, userID)
	if err != nil {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Order, error) {
		var o shop.Order
		err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt)
		return o, err
	})
	if err != nil {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, err)
	}

	for i := range orders {
		// One more query, and one more round trip, for every order.
		items, err := getOrderItems(ctx, db, orders[i].ID)
		if err != nil {
			return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, err)
		}
		orders[i].Items = items
	}
	return shop.UserOrders{User: user, Orders: orders}, nil
}

// getOrderItems returns the items of one order, with their products.
func getOrderItems(ctx context.Context, db *pgxpool.Pool, orderID int64) ([]shop.OrderItem, error) {
	// Uses order_items_pkey (order_id, line_no) and products_pkey.
	const itemsQuery = `SELECT i.line_no, i.quantity, i.price_cents, p.id, p.name, p.category, p.price_cents
		FROM order_items i JOIN products p ON p.id = i.product_id
		WHERE i.order_id = $1 ORDER BY i.line_no`
	rows, err := db.Query(ctx, itemsQuery, orderID)
	if err != nil {
		return nil, fmt.Errorf("items of order %d: %w", orderID, err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.OrderItem, error) {
		var it shop.OrderItem
		err := row.Scan(&it.LineNo, &it.Quantity, &it.PriceCents,
			&it.Product.ID, &it.Product.Name, &it.Product.Category, &it.Product.PriceCents)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("items of order %d: %w", orderID, err)
	}
	return items, nil
}
