// Package caching is lesson 6's exercise: yours to change.
//
// Every page of the shop shows the menu of categories, and Catalog below reads
// them from PostgreSQL on every call, through the naive version. Cache them,
// so that a hundred page views make at most one query, then check:
//
//	go test -race -tags exercise -run Exercise06 ./bench/caching
//
// The check compares your counts with the naive ones, changes each answer it
// gets, counts the queries of 100 calls one after another and of 50 at once,
// then adds a category and reads the menu every 10 seconds of a fake clock
// (testing/synctest) for 5 minutes: your menu must show it by then. A
// goroutine your cache starts must return once the cache is dropped: the fake
// clock's bubble waits for it.
// One answer is in works-vs-scales/scalable/caching.
package caching

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/caching"
)

// Catalog serves the shop's menu of categories.
type Catalog struct {
	naive *naive.Catalog // replace me
}

// NewCatalog returns a Catalog on db, or an error wrapping
// shop.ErrInvalidConfig for no database.
func NewCatalog(db *pgxpool.Pool) (*Catalog, error) {
	c, err := naive.NewCatalog(db)
	if err != nil {
		return nil, err
	}
	return &Catalog{naive: c}, nil
}

// CategoryCounts returns how many products each category has.
func (c *Catalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	return c.naive.CategoryCounts(ctx)
}
