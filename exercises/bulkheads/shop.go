// Package bulkheads is lesson 11's exercise: yours to change.
//
// Shop below serves orders, search and payments through the naive version,
// from the one pool it is given: when search gets stuck, it takes every
// connection, and orders and payments time out. Give each workload its own
// pool (opened from db.Config(), closed by Close) and a deadline, then check:
//
//	go test -tags exercise -run Exercise11 ./bench/bulkheads
//
// The check locks the products table, keeps 16 searches waiting on it, and
// asks for a user's orders and payments with a deadline of 300 ms, then for a
// search, which must fail at its own deadline; then the network to the
// database drops every packet, and every call, twelve of each workload at
// once, must end at a deadline of yours; after Close, no connection your
// Shop opened may be left open. One answer is in
// works-vs-scales/scalable/bulkheads.
package bulkheads

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/bulkheads"
	"works-vs-scales/shop"
)

// Shop serves orders, search and payments.
type Shop struct {
	naive *naive.Shop // replace me
}

// New returns a Shop on db's database.
func New(db *pgxpool.Pool) (*Shop, error) {
	s, err := naive.New(db)
	if err != nil {
		return nil, err
	}
	return &Shop{naive: s}, nil
}

// Close closes the pools the Shop opened.
func (s *Shop) Close() {}

// RecentOrders returns the user's ten latest orders, without their items.
func (s *Shop) RecentOrders(ctx context.Context, userID int64) ([]shop.Order, error) {
	return s.naive.RecentOrders(ctx, userID)
}

// SearchProducts returns the first twenty products whose name contains term.
func (s *Shop) SearchProducts(ctx context.Context, term string) ([]shop.Product, error) {
	return s.naive.SearchProducts(ctx, term)
}

// UserPayments returns the user's ten latest payments.
func (s *Shop) UserPayments(ctx context.Context, userID int64) ([]shop.Payment, error) {
	return s.naive.UserPayments(ctx, userID)
}
