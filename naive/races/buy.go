package races

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Buy sells quantity units of a product to a user and returns the id of the
// order it placed: it reads the stock, checks it in Go, writes the stock less
// quantity, and inserts the order, in one transaction.
//
// Between the read and the write, other buyers read the same stock: each
// writes its own "stock - quantity" over the others', and all of them sell.
func Buy(ctx context.Context, db *pgxpool.Pool, userID, productID int64, quantity int32) (int64, error) {
	if quantity <= 0 {
		return 0, fmt.Errorf("buy %d of product %d: %w", quantity, productID, shop.ErrInvalidQuantity)
	}
	tx, err := db.Begin(ctx)
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
	if err := insertItem(ctx, tx, orderID, 1, productID, quantity, price); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("buy product %d: %w", productID, err)
	}
	return orderID, nil
}

// BuyBasket sells a basket to a user in one order and returns its id: for
// each item, in the caller's order, it takes the units from the stock and
// adds the order's line. A basket with any item out of stock sells nothing.
//
// Each item's row stays locked until the end: two baskets with the same two
// products in opposite orders each hold the row the other waits for, and
// PostgreSQL ends the deadlock by failing one (SQLSTATE 40P01).
func BuyBasket(ctx context.Context, db *pgxpool.Pool, userID int64, items []shop.BasketItem) (int64, error) {
	if len(items) == 0 {
		return 0, fmt.Errorf("buy an empty basket: %w", shop.ErrInvalidQuantity)
	}
	for _, item := range items {
		if item.Quantity <= 0 {
			return 0, fmt.Errorf("buy %d of product %d: %w", item.Quantity, item.ProductID, shop.ErrInvalidQuantity)
		}
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
	for i, item := range items {
		price, err := takeStock(ctx, tx, item)
		if err != nil {
			return 0, err
		}
		if err := insertItem(ctx, tx, orderID, int32(i+1), item.ProductID, item.Quantity, price); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("buy a basket of %d items: %w", len(items), err)
	}
	return orderID, nil
}

// takeStock takes an item's units from its product's stock, if there are
// enough, and returns the product's price. The row stays locked until tx ends.
func takeStock(ctx context.Context, tx pgx.Tx, item shop.BasketItem) (int64, error) {
	const takeStock = `UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING price_cents`
	var price int64
	err := tx.QueryRow(ctx, takeStock, item.ProductID, item.Quantity).Scan(&price)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, whyNotTaken(ctx, tx, item)
	}
	if err != nil {
		return 0, fmt.Errorf("take %d of product %d: %w", item.Quantity, item.ProductID, err)
	}
	return price, nil
}

// whyNotTaken says why no row took an item's units: no such product, or not
// enough of it.
func whyNotTaken(ctx context.Context, tx pgx.Tx, item shop.BasketItem) error {
	const productExists = `SELECT EXISTS (SELECT FROM products WHERE id = $1)`
	var exists bool
	if err := tx.QueryRow(ctx, productExists, item.ProductID).Scan(&exists); err != nil {
		return fmt.Errorf("take %d of product %d: %w", item.Quantity, item.ProductID, err)
	}
	if !exists {
		return fmt.Errorf("take product %d: %w", item.ProductID, shop.ErrProductNotFound)
	}
	return fmt.Errorf("take %d of product %d: %w", item.Quantity, item.ProductID, shop.ErrOutOfStock)
}

// insertOrder inserts a pending order of the user's and returns its id.
func insertOrder(ctx context.Context, tx pgx.Tx, userID int64) (int64, error) {
	const insertOrder = `INSERT INTO orders (user_id, status, created_at) VALUES ($1, 'pending', now()) RETURNING id`
	var orderID int64
	err := tx.QueryRow(ctx, insertOrder, userID).Scan(&orderID)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return 0, fmt.Errorf("place an order for user %d: %w", userID, shop.ErrUserNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("place an order for user %d: %w", userID, err)
	}
	return orderID, nil
}

// insertItem adds a line to an order.
func insertItem(ctx context.Context, tx pgx.Tx, orderID int64, lineNo int32, productID int64, quantity int32, price int64) error {
	const insertItem = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents) VALUES ($1, $2, $3, $4, $5)`
	if _, err := tx.Exec(ctx, insertItem, orderID, lineNo, productID, quantity, price); err != nil {
		return fmt.Errorf("add product %d to order %d: %w", productID, orderID, err)
	}
	return nil
}
