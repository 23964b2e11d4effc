package pagination

import (
	"github.com/jackc/pgx/v5"

	"works-vs-scales/shop"
)

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
