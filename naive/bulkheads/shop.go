// Package bulkheads serves the shop's three workloads, orders, search and
// payments, from one pool of connections, with no deadline of its own. When
// one workload slows down, its calls hold every connection, and the others
// wait behind them: a stuck search takes orders and payments down with it.
package bulkheads

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Shop serves orders, search and payments from db.
type Shop struct {
	db *pgxpool.Pool
}

// New returns a Shop on db, or an error wrapping [shop.ErrInvalidConfig] for
// no database.
func New(db *pgxpool.Pool) (*Shop, error) {
	if db == nil {
		return nil, fmt.Errorf("shop: no database: %w", shop.ErrInvalidConfig)
	}
	return &Shop{db: db}, nil
}

// RecentOrders returns the user's ten latest orders, without their items.
func (s *Shop) RecentOrders(ctx context.Context, userID int64) ([]shop.Order, error) {
	// orders_user_id_created_at_idx: the user's orders, newest first.
	const recentOrders = `
		SELECT id, user_id, status, created_at FROM orders
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10`
	rows, err := s.db.Query(ctx, recentOrders, userID)
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

// SearchProducts returns the first twenty products whose name contains term,
// as typed, ignoring case. A term longer than shop.MaxSearchTermSize gets an
// error that wraps shop.ErrSearchTermTooLong.
func (s *Shop) SearchProducts(ctx context.Context, term string) ([]shop.Product, error) {
	if err := shop.CheckSearchTerm(term); err != nil {
		return nil, fmt.Errorf("search products for %s: %w", shop.Quote(term), err)
	}
	// No index serves a substring: a scan of products, which is small. The
	// term is escaped, so that %, _ and \ in it are found as typed rather
	// than read as wildcards.
	const searchProducts = `
		SELECT id, name, category, price_cents FROM products
		WHERE name ILIKE '%' || $1 || '%' ESCAPE '\' ORDER BY id LIMIT 20`
	rows, err := s.db.Query(ctx, searchProducts, shop.EscapeLike(term))
	if err != nil {
		return nil, fmt.Errorf("search products for %s: %w", shop.Quote(term), err)
	}
	products, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shop.Product])
	if err != nil {
		return nil, fmt.Errorf("search products for %s: %w", shop.Quote(term), err)
	}
	return products, nil
}

// UserPayments returns the user's ten latest payments.
func (s *Shop) UserPayments(ctx context.Context, userID int64) ([]shop.Payment, error) {
	// No index on user_id: the payments table is small in this shop.
	const userPayments = `
		SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '') FROM payments
		WHERE user_id = $1 ORDER BY id DESC LIMIT 10`
	rows, err := s.db.Query(ctx, userPayments, userID)
	if err != nil {
		return nil, fmt.Errorf("payments of user %d: %w", userID, err)
	}
	payments, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shop.Payment])
	if err != nil {
		return nil, fmt.Errorf("payments of user %d: %w", userID, err)
	}
	return payments, nil
}
