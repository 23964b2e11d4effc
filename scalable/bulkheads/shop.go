// Package bulkheads serves the shop's three workloads, orders, search and
// payments, each from a pool of its own and within a deadline of its own.
// When one workload slows down, it runs out of its own connections and its
// calls fail at their deadline; the others, on their own pools, do not notice.
//
// Like the compartments of a ship's hull: one floods, the ship floats.
package bulkheads

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Pools are the connection pools of the three workloads.
type Pools struct {
	Orders, Search, Payments *pgxpool.Pool
}

// Sizes are the connections each workload may hold: together, what the
// database can serve this application.
type Sizes struct {
	Orders, Search, Payments int32
}

// DefaultSizes splits eight connections: search, the workload most likely to
// be slow, gets the fewest.
var DefaultSizes = Sizes{Orders: 4, Search: 2, Payments: 2}

// Timeouts are how long a call of each workload may take, waiting for a
// connection included.
type Timeouts struct {
	Orders, Search, Payments time.Duration
}

// DefaultTimeouts suit calls that answer a user's page.
var DefaultTimeouts = Timeouts{Orders: 500 * time.Millisecond, Search: 200 * time.Millisecond, Payments: time.Second}

// OpenPools opens one pool per workload, each of its size, from one
// configuration. For no configuration, or a size below 1, it returns an error
// wrapping [shop.ErrInvalidConfig].
func OpenPools(ctx context.Context, cfg *pgxpool.Config, sizes Sizes) (Pools, error) {
	if cfg == nil {
		return Pools{}, fmt.Errorf("open pools: no configuration: %w", shop.ErrInvalidConfig)
	}
	for _, w := range []struct {
		name string
		size int32
	}{{"orders", sizes.Orders}, {"search", sizes.Search}, {"payments", sizes.Payments}} {
		if w.size < 1 {
			return Pools{}, fmt.Errorf("open pools: %s size %d: want at least 1: %w", w.name, w.size, shop.ErrInvalidConfig)
		}
	}
	open := func(workload string, size int32) (*pgxpool.Pool, error) {
		c := cfg.Copy()
		c.MaxConns = size
		pool, err := pgxpool.NewWithConfig(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("open the %s pool: %w", workload, err)
		}
		return pool, nil
	}
	var pools Pools
	var errOrders, errSearch, errPayments error
	pools.Orders, errOrders = open("orders", sizes.Orders)
	pools.Search, errSearch = open("search", sizes.Search)
	pools.Payments, errPayments = open("payments", sizes.Payments)
	if err := errors.Join(errOrders, errSearch, errPayments); err != nil {
		pools.Close()
		return Pools{}, err
	}
	return pools, nil
}

// Close closes every pool opened.
func (p Pools) Close() {
	for _, pool := range []*pgxpool.Pool{p.Orders, p.Search, p.Payments} {
		if pool != nil {
			pool.Close()
		}
	}
}

// Shop serves orders, search and payments, each from its own pool.
type Shop struct {
	pools    Pools
	timeouts Timeouts
}

// MaxTimeout is the longest timeout New accepts for a workload's calls.
const MaxTimeout = time.Hour

// New returns a Shop on pools, whose calls end at timeouts; or, for a
// workload without a pool, or with a timeout that is not positive or is over
// [MaxTimeout], an error wrapping [shop.ErrInvalidConfig].
func New(pools Pools, timeouts Timeouts) (*Shop, error) {
	for _, w := range []struct {
		name    string
		pool    *pgxpool.Pool
		timeout time.Duration
	}{
		{"orders", pools.Orders, timeouts.Orders},
		{"search", pools.Search, timeouts.Search},
		{"payments", pools.Payments, timeouts.Payments},
	} {
		if w.pool == nil {
			return nil, fmt.Errorf("shop: no %s pool: %w", w.name, shop.ErrInvalidConfig)
		}
		if w.timeout <= 0 || w.timeout > MaxTimeout {
			return nil, fmt.Errorf("shop: %s timeout %v: want more than 0 and at most %v: %w", w.name, w.timeout, MaxTimeout, shop.ErrInvalidConfig)
		}
	}
	return &Shop{pools: pools, timeouts: timeouts}, nil
}

// RecentOrders returns the user's ten latest orders, without their items.
func (s *Shop) RecentOrders(ctx context.Context, userID int64) ([]shop.Order, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeouts.Orders)
	defer cancel()
	// orders_user_id_created_at_idx: the user's orders, newest first.
	const recentOrders = `
		SELECT id, user_id, status, created_at FROM orders
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10`
	rows, err := s.pools.Orders.Query(ctx, recentOrders, userID)
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
	ctx, cancel := context.WithTimeout(ctx, s.timeouts.Search)
	defer cancel()
	// No index serves a substring: a scan of products, which is small. The
	// term is escaped, so that %, _ and \ in it are found as typed rather
	// than read as wildcards.
	const searchProducts = `
		SELECT id, name, category, price_cents FROM products
		WHERE name ILIKE '%' || $1 || '%' ESCAPE '\' ORDER BY id LIMIT 20`
	rows, err := s.pools.Search.Query(ctx, searchProducts, shop.EscapeLike(term))
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
	ctx, cancel := context.WithTimeout(ctx, s.timeouts.Payments)
	defer cancel()
	// No index on user_id: the payments table is small in this shop.
	const userPayments = `
		SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '') FROM payments
		WHERE user_id = $1 ORDER BY id DESC LIMIT 10`
	rows, err := s.pools.Payments.Query(ctx, userPayments, userID)
	if err != nil {
		return nil, fmt.Errorf("payments of user %d: %w", userID, err)
	}
	payments, err := pgx.CollectRows(rows, pgx.RowToStructByPos[shop.Payment])
	if err != nil {
		return nil, fmt.Errorf("payments of user %d: %w", userID, err)
	}
	return payments, nil
}
