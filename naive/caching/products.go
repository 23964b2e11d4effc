// Package caching serves the product page the way that works first: every
// request reads the product from PostgreSQL. Simple and always fresh; but the
// database does the same work for every visitor of a popular product, and its
// load grows with traffic, not with data.
//
// Compare with works-vs-scales/scalable/caching: the same reads through a
// cache in the process, or in Redis.
package caching

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ErrProductNotFound is returned when no product has the requested id.
var ErrProductNotFound = errors.New("product not found")

// ErrNegativePrice is returned for a price below zero.
var ErrNegativePrice = errors.New("negative price")

// Products reads and reprices the shop's products.
type Products struct {
	db *pgxpool.Pool
}

// NewProducts returns Products on db, or an error wrapping
// [shop.ErrInvalidConfig] for no database.
func NewProducts(db *pgxpool.Pool) (*Products, error) {
	if db == nil {
		return nil, fmt.Errorf("products: no database: %w", shop.ErrInvalidConfig)
	}
	return &Products{db: db}, nil
}

// Get returns the product with the given id: one query, every call.
func (p *Products) Get(ctx context.Context, id int64) (shop.Product, error) {
	// Uses products_pkey.
	const productQuery = `SELECT id, name, category, price_cents FROM products WHERE id = $1`
	var product shop.Product
	err := p.db.QueryRow(ctx, productQuery, id).Scan(&product.ID, &product.Name, &product.Category, &product.PriceCents)
	if errors.Is(err, pgx.ErrNoRows) {
		return shop.Product{}, fmt.Errorf("product %d: %w", id, ErrProductNotFound)
	}
	if err != nil {
		return shop.Product{}, fmt.Errorf("product %d: %w", id, err)
	}
	return product, nil
}

// SetPrice changes the product's price. A price below zero is refused with
// ErrNegativePrice.
func (p *Products) SetPrice(ctx context.Context, id, priceCents int64) error {
	return setPrice(ctx, p.db, id, priceCents)
}

func setPrice(ctx context.Context, db *pgxpool.Pool, id, priceCents int64) error {
	if priceCents < 0 {
		return fmt.Errorf("set price of product %d to %d: %w", id, priceCents, ErrNegativePrice)
	}
	const repriceQuery = `UPDATE products SET price_cents = $2 WHERE id = $1`
	tag, err := db.Exec(ctx, repriceQuery, id, priceCents)
	if err != nil {
		return fmt.Errorf("set price of product %d to %d: %w", id, priceCents, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set price of product %d: %w", id, ErrProductNotFound)
	}
	return nil
}
