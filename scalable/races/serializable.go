package races

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// BuySerializable is the naive version, unchanged, in a SERIALIZABLE
// transaction: PostgreSQL fails any transaction whose outcome differs from
// some order of running them one at a time (SQLSTATE 40001,
// serialization_failure), and the buy tries again, as policy says.
//
// The code needs no thought about races, which is the point; the cost is the
// failed attempts, which grow with the buyers of one product, and a retry
// loop around every transaction, which must be safe to run twice.
func BuySerializable(ctx context.Context, db *pgxpool.Pool, policy Policy, userID, productID int64, quantity int32) (int64, error) {
	if quantity <= 0 {
		return 0, fmt.Errorf("buy %d of product %d: %w", quantity, productID, shop.ErrInvalidQuantity)
	}
	serializationFailure := func(err error) bool { return isCode(err, "40001") }
	return withRetries(ctx, policy, serializationFailure, func() (int64, error) {
		tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
		if err != nil {
			return 0, fmt.Errorf("buy product %d: %w", productID, err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, does nothing

		const readStock = `SELECT stock, price_cents FROM products WHERE id = $1`
		var stock int32
		var price int64
		if err := tx.QueryRow(ctx, readStock, productID).Scan(&stock, &price); errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("buy product %d: %w", productID, shop.ErrProductNotFound)
		} else if err != nil {
			return 0, fmt.Errorf("buy product %d: read its stock: %w", productID, err)
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
	})
}
