package replicas

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Store places orders on a primary and reads them from its replica.
// It is safe for concurrent use.
type Store struct {
	primary, replica *pgxpool.Pool
	replicaReads     atomic.Int64
}

// Stats counts where a Store's reads went.
type Stats struct {
	ReplicaReads int64 // reads the replica answered
	PrimaryReads int64 // reads the primary answered
	Waits        int64 // reads that waited for the replica to catch up
}

// New returns a Store that writes to primary and reads from replica, a
// streaming replica of it.
func New(primary, replica *pgxpool.Pool) (*Store, error) {
	if primary == nil || replica == nil {
		return nil, fmt.Errorf("replica store: a primary and a replica are both needed: %w", shop.ErrInvalidConfig)
	}
	return &Store{primary: primary, replica: replica}, nil
}

// Stats returns where the Store's reads have gone so far.
func (s *Store) Stats() Stats { return Stats{ReplicaReads: s.replicaReads.Load()} }

// PlaceOrder places a pending order of quantity units of a product for a
// user, at the product's price, on the primary, and returns its id.
func (s *Store) PlaceOrder(ctx context.Context, userID, productID int64, quantity int32) (int64, error) {
	return placeOrder(ctx, s.primary, userID, productID, quantity)
}

// RecentOrders returns up to limit of the user's orders, newest first,
// without their items, as the replica has them.
func (s *Store) RecentOrders(ctx context.Context, userID int64, limit int) ([]shop.Order, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, fmt.Errorf("recent orders of user %d: %w", userID, err)
	}
	s.replicaReads.Add(1)
	return recentOrders(ctx, s.replica, userID, limit)
}

// Product returns a product as the replica has it: a price a moment old is
// fine on a product page.
func (s *Store) Product(ctx context.Context, id int64) (shop.Product, error) {
	s.replicaReads.Add(1)
	return product(ctx, s.replica, id)
}

// placeOrder places the order in one statement: no order is inserted unless
// both the user and the product exist.
func placeOrder(ctx context.Context, db *pgxpool.Pool, userID, productID int64, quantity int32) (int64, error) {
	if quantity <= 0 {
		return 0, fmt.Errorf("order %d of product %d: %w", quantity, productID, shop.ErrInvalidQuantity)
	}
	const place = `
		WITH placed AS (
			INSERT INTO orders (user_id, status, created_at)
			SELECT $1, 'pending', now()
			WHERE EXISTS (SELECT FROM users WHERE id = $1) AND EXISTS (SELECT FROM products WHERE id = $2)
			RETURNING id)
		INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
		SELECT placed.id, 1, p.id, $3, p.price_cents FROM placed, products p WHERE p.id = $2
		RETURNING order_id`
	var orderID int64
	err := db.QueryRow(ctx, place, userID, productID, quantity).Scan(&orderID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, missing(ctx, db, userID, productID)
	}
	if err != nil {
		return 0, fmt.Errorf("order product %d for user %d: %w", productID, userID, err)
	}
	return orderID, nil
}

// missing says which of the user and the product does not exist.
func missing(ctx context.Context, db *pgxpool.Pool, userID, productID int64) error {
	const exists = `SELECT EXISTS (SELECT FROM users WHERE id = $1)`
	var userExists bool
	if err := db.QueryRow(ctx, exists, userID).Scan(&userExists); err != nil {
		return fmt.Errorf("order for user %d: %w", userID, err)
	}
	if !userExists {
		return fmt.Errorf("order for user %d: %w", userID, shop.ErrUserNotFound)
	}
	return fmt.Errorf("order product %d: %w", productID, shop.ErrProductNotFound)
}

func recentOrders(ctx context.Context, db *pgxpool.Pool, userID int64, limit int) ([]shop.Order, error) {
	const recent = `
		SELECT id, user_id, status, created_at FROM orders
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	rows, err := db.Query(ctx, recent, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent orders of user %d: %w", userID, err)
	}
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Order, error) {
		var o shop.Order
		err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("recent orders of user %d: %w", userID, err)
	}
	return orders, nil
}

func product(ctx context.Context, db *pgxpool.Pool, id int64) (shop.Product, error) {
	const byID = `SELECT id, name, category, price_cents FROM products WHERE id = $1`
	var p shop.Product
	err := db.QueryRow(ctx, byID, id).Scan(&p.ID, &p.Name, &p.Category, &p.PriceCents)
	if errors.Is(err, pgx.ErrNoRows) {
		return shop.Product{}, fmt.Errorf("product %d: %w", id, shop.ErrProductNotFound)
	}
	if err != nil {
		return shop.Product{}, fmt.Errorf("product %d: %w", id, err)
	}
	return p, nil
}
