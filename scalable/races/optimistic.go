package races

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// errVersionChanged says another buyer wrote the product between our read and
// our write.
var errVersionChanged = errors.New("the product changed since it was read")

// BuyOptimistic is the naive version with one guard: the write succeeds only
// if the product's version is still the one read, and bumps it. A buyer who
// lost the race reads again and tries again, as policy says.
//
// No lock is held between the read and the write, so a slow buyer blocks
// nobody; under contention, most attempts lose, and each loss costs a
// transaction and a wait.
func BuyOptimistic(ctx context.Context, db *pgxpool.Pool, policy Policy, userID, productID int64, quantity int32) (int64, error) {
	if quantity <= 0 {
		return 0, fmt.Errorf("buy %d of product %d: %w", quantity, productID, shop.ErrInvalidQuantity)
	}
	return withRetries(ctx, policy, func(err error) bool { return errors.Is(err, errVersionChanged) }, func() (int64, error) {
		const readStock = `SELECT stock, version, price_cents FROM products WHERE id = $1`
		var stock int32
		var version, price int64
		if err := db.QueryRow(ctx, readStock, productID).Scan(&stock, &version, &price); errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("buy product %d: %w", productID, shop.ErrProductNotFound)
		} else if err != nil {
			return 0, fmt.Errorf("buy product %d: read its stock: %w", productID, err)
		}
		if stock < quantity {
			return 0, fmt.Errorf("buy %d of product %d, %d left: %w", quantity, productID, stock, shop.ErrOutOfStock)
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			return 0, fmt.Errorf("buy product %d: %w", productID, err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, does nothing

		const writeStock = `UPDATE products SET stock = $3, version = version + 1 WHERE id = $1 AND version = $2`
		tag, err := tx.Exec(ctx, writeStock, productID, version, stock-quantity)
		if err != nil {
			return 0, fmt.Errorf("buy product %d: write its stock: %w", productID, err)
		}
		if tag.RowsAffected() == 0 {
			return 0, fmt.Errorf("buy product %d at version %d: %w", productID, version, errVersionChanged)
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
