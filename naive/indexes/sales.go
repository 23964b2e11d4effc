package indexes

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ProductSales returns what the product sold, over the shop's whole history.
//
// It reads every order item of every product. (Lesson 3's exercise starts here.)
func ProductSales(ctx context.Context, db *pgxpool.Pool, productID int64) (shop.ProductSales, error) {
	// No index leads with product_id: a sequential scan of every order item.
	const salesQuery = `SELECT count(DISTINCT order_id), coalesce(sum(quantity), 0), coalesce(sum(quantity * price_cents), 0)
		FROM order_items WHERE product_id = $1`
	var sales shop.ProductSales
	if err := db.QueryRow(ctx, salesQuery, productID).Scan(&sales.Orders, &sales.Units, &sales.RevenueCents); err != nil {
		return shop.ProductSales{}, fmt.Errorf("sales of product %d: %w", productID, err)
	}
	return sales, nil
}
