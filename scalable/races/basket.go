package races

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// BuyBasket sells a basket to a user in one order and returns its id. A
// basket with any item out of stock sells nothing.
//
// It locks the products in one global order, by id, whatever order the
// caller gave: two baskets then wait for each other's rows in the same order,
// and neither can hold a row the other already waits behind, so they cannot
// deadlock. The order's lines are in product order; a product given twice is
// one line.
func BuyBasket(ctx context.Context, db *pgxpool.Pool, userID int64, items []shop.BasketItem) (int64, error) {
	if len(items) == 0 {
		return 0, fmt.Errorf("buy an empty basket: %w", shop.ErrInvalidQuantity)
	}
	sorted, err := byProduct(items)
	if err != nil {
		return 0, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("buy a basket of %d items: %w", len(items), err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, does nothing

	orderID, err := insertOrder(ctx, tx, userID)
	if err != nil {
		return 0, err
	}
	for i, item := range sorted {
		price, err := takeStock(ctx, tx, item)
		if err != nil {
			return 0, err
		}
		if err := insertItem(ctx, tx, orderID, int32(i+1), item, price); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("buy a basket of %d items: %w", len(items), err)
	}
	return orderID, nil
}

// byProduct returns the items sorted by product id, one per product, the
// quantities of a product given twice added up.
func byProduct(items []shop.BasketItem) ([]shop.BasketItem, error) {
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b shop.BasketItem) int { return cmp.Compare(a.ProductID, b.ProductID) })
	merged := sorted[:0]
	for _, item := range sorted {
		if item.Quantity <= 0 {
			return nil, fmt.Errorf("buy %d of product %d: %w", item.Quantity, item.ProductID, shop.ErrInvalidQuantity)
		}
		last := len(merged) - 1
		if last < 0 || merged[last].ProductID != item.ProductID {
			merged = append(merged, item)
			continue
		}
		if int64(merged[last].Quantity)+int64(item.Quantity) > math.MaxInt32 {
			return nil, fmt.Errorf("buy more than %d of product %d: %w", math.MaxInt32, item.ProductID, shop.ErrOutOfStock)
		}
		merged[last].Quantity += item.Quantity
	}
	return merged, nil
}
