package migrations

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/goosepg"
)

// The versions of the shop's migrations, in sql/.
const (
	AddTotal      int64 = 1 // orders.total_cents, empty
	BackfillTotal int64 = 2 // every order's total
	IndexTotal    int64 = 3 // an index on orders.total_cents
	RenamePhone   int64 = 4 // users.phone becomes users.phone_number
)

//go:embed sql/*.sql
var files embed.FS

// Migrate applies the shop's migrations up to version to, each in a
// transaction of its own, as written.
func Migrate(ctx context.Context, db *pgxpool.Pool, to int64) error {
	return goosepg.UpTo(ctx, db, files, "sql", to)
}
