package shop

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Schema creates the shop's tables, empty and without keys or indexes.
//
//go:embed schema.sql
var Schema string

// Indexes adds the keys, foreign keys and indexes, once the rows are loaded.
//
//go:embed indexes.sql
var Indexes string

// table is one table's generated rows, in the column order of schema.sql.
type table struct {
	name    string
	columns []string
	rows    func(Scale, uint64) func() ([]any, error)
}

var tables = []table{
	{"users", []string{"id", "name", "email", "phone", "created_at"}, userRows},
	{"products", []string{"id", "name", "category", "price_cents", "stock"}, productRows},
	{"orders", []string{"id", "user_id", "status", "created_at"}, orderRows},
	{"order_items", []string{"order_id", "line_no", "product_id", "quantity", "price_cents"}, orderItemRows},
	{"posts", []string{"id", "author_id", "title", "created_at"}, postRows},
	{"comments", []string{"id", "post_id", "author_id", "body", "created_at"}, commentRows},
}

// Load creates the shop's schema in an empty database and fills it with the rows
// generated for the scale and seed: COPY into bare tables, then keys and
// indexes, then VACUUM and ANALYZE.
func Load(ctx context.Context, conn *pgx.Conn, s Scale, seed uint64) error {
	if _, err := conn.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("create shop schema: %w", err)
	}
	for _, t := range tables {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, pgx.CopyFromFunc(t.rows(s, seed))); err != nil {
			return fmt.Errorf("copy %s rows at scale %v seed %d: %w", t.name, s, seed, err)
		}
	}
	if _, err := conn.Exec(ctx, Indexes); err != nil {
		return fmt.Errorf("build shop keys and indexes: %w", err)
	}
	// A live table is vacuumed by autovacuum; a fresh load is not, and without
	// a visibility map no index-only scan can skip the heap. VACUUM cannot run
	// inside the multi-statement transaction of Indexes, so it runs alone.
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE)"); err != nil {
		return fmt.Errorf("vacuum the shop: %w", err)
	}
	return nil
}
