package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/goosepg"
	"works-vs-scales/shop"
)

// The versions of the shop's migrations, in sql/.
const (
	AddTotal      int64 = 1 // orders.total_cents, empty
	BackfillTotal int64 = 2 // every order's total
	IndexTotal    int64 = 3 // an index on orders.total_cents
	RenamePhone   int64 = 4 // users.phone becomes users.phone_number
)

// ErrUnknownVersion is returned for a version below the first, before the
// database is asked anything.
var ErrUnknownVersion = errors.New("migrations: no such version")

//go:embed sql/*.sql
var files embed.FS

// Migrate applies the shop's migrations up to version to, each in a
// transaction of its own, as written; a version past the last applies them
// all. No database is an error wrapping [shop.ErrInvalidConfig].
func Migrate(ctx context.Context, db *pgxpool.Pool, to int64) error {
	if err := checkMigrate(db, to); err != nil {
		return err
	}
	return goosepg.UpTo(ctx, db, files, "sql", to)
}

// checkMigrate refuses a migration to version to on db that cannot run.
func checkMigrate(db *pgxpool.Pool, to int64) error {
	switch {
	case db == nil:
		return fmt.Errorf("migrate to version %d: no database: %w", to, shop.ErrInvalidConfig)
	case to < AddTotal:
		return fmt.Errorf("migrate to version %d, the first is %d: %w", to, AddTotal, ErrUnknownVersion)
	}
	return nil
}
