package indexes

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ProductSales returns what the product sold, over the shop's whole history.
//
// With ProductSalesIndex it reads only the product's items. (This is the
// reference answer to lesson 3's exercise.)
func ProductSales(ctx context.Context, db *pgxpool.Pool, productID int64) (shop.ProductSales, error) {
	// Uses order_items_product_id_idx (ProductSalesIndex): the product's items only.
	const salesQuery = `SELECT count(DISTINCT order_id), coalesce(sum(quantity), 0), coalesce(sum(quantity * price_cents), 0)
		FROM order_items WHERE product_id = $1`
	var sales shop.ProductSales
	if err := db.QueryRow(ctx, salesQuery, productID).Scan(&sales.Orders, &sales.Units, &sales.RevenueCents); err != nil {
		return shop.ProductSales{}, fmt.Errorf("sales of product %d: %w", productID, err)
	}
	return sales, nil
}

// ProductSalesIndex is the index ProductSales needs: the column its WHERE
// tests.
const ProductSalesIndex = `CREATE INDEX order_items_product_id_idx ON order_items (product_id)`
