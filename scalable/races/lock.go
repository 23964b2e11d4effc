package races

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// BuyForUpdate is [Buy] written as the naive version is, a read, a check in
// Go and a write, with the read locking the row (SELECT … FOR UPDATE): the
// next buyer's read waits until this transaction ends, then reads the stock
// it left.
//
// It costs what Buy costs, the row locked for the whole transaction, and one
// more round trip. Use it when the check needs more than one statement can
// say.
func BuyForUpdate(ctx context.Context, db *pgxpool.Pool, userID, productID int64, quantity int32) (int64, error) {
	if quantity <= 0 {
		return 0, fmt.Errorf("buy %d of product %d: %w", quantity, productID, shop.ErrInvalidQuantity)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("buy product %d: %w", productID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, does nothing

	const lockStock = `SELECT stock, price_cents FROM products WHERE id = $1 FOR UPDATE`
	var stock int32
	var price int64
	if err := tx.QueryRow(ctx, lockStock, productID).Scan(&stock, &price); errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("buy product %d: %w", productID, shop.ErrProductNotFound)
	} else if err != nil {
		return 0, fmt.Errorf("buy product %d: lock its stock: %w", productID, err)
	}
	if stock < quantity {
		return 0, fmt.Errorf("buy %d of product %d, %d left: %w", quantity, productID, stock, shop.ErrOutOfStock)
	}
	const writeStock = `UPDATE products SET stock = $2 WHERE id = $1`
	if _, err := tx.Exec(ctx, writeStock, productID, stock-quantity); err != nil {
		return 0, fmt.Errorf("buy product %d: write its stock: %w", productID, err)
	}
	orderID, err := insertOrder(ctx, tx, userID)
	if err != nil {
		return 0, err
	}
	if err := insertItem(ctx, tx, orderID, 1, shop.BasketItem{ProductID: productID, Quantity: quantity}, price); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("buy product %d: %w", productID, err)
	}
	return orderID, nil
}
