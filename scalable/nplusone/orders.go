package nplusone

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// GetUserOrders returns the user with the given id and all of their orders,
// newest first, each with its items in line order.
//
// It makes one query: the user joined to the orders, their items and products,
// one row per item, put back together here. The user's columns repeat on every
// row: bytes on the wire, traded for round trips.
func GetUserOrders(ctx context.Context, db *pgxpool.Pool, userID int64) (shop.UserOrders, error) {
	// Uses users_pkey, orders_user_id_created_at_idx, order_items_pkey and
	// products_pkey. LEFT JOINs keep a user who has no orders.
	const userOrdersQuery = `SELECT u.id, u.name, u.email, u.phone, u.created_at,
			o.id, o.status, o.created_at,
			i.line_no, i.quantity, i.price_cents,
			p.id, p.name, p.category, p.price_cents
		FROM users u
		LEFT JOIN orders o ON o.user_id = u.id
		LEFT JOIN order_items i ON i.order_id = o.id
		LEFT JOIN products p ON p.id = i.product_id
		WHERE u.id = $1
		ORDER BY o.created_at DESC, o.id DESC, i.line_no`
	rows, err := db.Query(ctx, userOrdersQuery, userID)
	if err != nil {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	defer rows.Close()

	result := shop.UserOrders{Orders: []shop.Order{}}
	found := false
	for rows.Next() {
		var r userOrderRow
		err := rows.Scan(&result.User.ID, &result.User.Name, &result.User.Email, &result.User.Phone, &result.User.CreatedAt,
			&r.orderID, &r.status, &r.placedAt,
			&r.lineNo, &r.quantity, &r.pricePaid,
			&r.productID, &r.productName, &r.category, &r.price)
		if err != nil {
			return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, err)
		}
		found = true
		if r.orderID == nil {
			continue // the user has no orders
		}
		if n := len(result.Orders); n == 0 || result.Orders[n-1].ID != *r.orderID {
			result.Orders = append(result.Orders, shop.Order{
				ID: *r.orderID, UserID: userID, Status: *r.status, CreatedAt: *r.placedAt, Items: []shop.OrderItem{},
			})
		}
		if r.lineNo == nil {
			continue // the order has no items
		}
		order := &result.Orders[len(result.Orders)-1]
		order.Items = append(order.Items, shop.OrderItem{
			LineNo:     *r.lineNo,
			Product:    shop.Product{ID: *r.productID, Name: *r.productName, Category: *r.category, PriceCents: *r.price},
			Quantity:   *r.quantity,
			PriceCents: *r.pricePaid,
		})
	}
	if err := rows.Err(); err != nil {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	if !found {
		return shop.UserOrders{}, fmt.Errorf("orders of user %d: %w", userID, shop.ErrUserNotFound)
	}
	return result, nil
}

// userOrderRow is one row of the user's orders query past the user's columns:
// NULL, so nil, where the user has no orders or an order has no items.
type userOrderRow struct {
	orderID          *int64
	status           *string
	placedAt         *time.Time
	lineNo, quantity *int32
	pricePaid        *int64
	productID, price *int64
	productName      *string
	category         *string
}
