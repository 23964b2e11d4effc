package pagination

import (
	"github.com/jackc/pgx/v5"

	"works-vs-scales/shop"
)

// collectOrders reads rows of an order joined to its items, ordered by order,
// into orders with their items.
func collectOrders(rows pgx.Rows) ([]shop.Order, error) {
	defer rows.Close()
	orders := []shop.Order{}
	for rows.Next() {
		var o shop.Order
		var it shop.OrderItem
		err := rows.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt,
			&it.LineNo, &it.Quantity, &it.PriceCents,
			&it.Product.ID, &it.Product.Name, &it.Product.Category, &it.Product.PriceCents)
		if err != nil {
			return nil, err
		}
		if n := len(orders); n == 0 || orders[n-1].ID != o.ID {
			orders = append(orders, o)
		}
		last := &orders[len(orders)-1]
		last.Items = append(last.Items, it)
	}
	return orders, rows.Err()
}
