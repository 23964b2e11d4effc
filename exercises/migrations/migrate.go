package migrations

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/goosepg"
)

// The versions of the migrations, in sql/; the check migrates to each in turn.
const (
	AddTotal      int64 = 1 // orders.total_cents, empty
	BackfillTotal int64 = 2 // every order's total
	IndexTotal    int64 = 3 // an index on orders.total_cents
)

//go:embed sql/*.sql
var files embed.FS

// Migrate applies the migrations up to version to, each in a transaction
// of its own, as written. goosepg.NewProvider gives the goose provider
// underneath, for a Migrate of your own: it takes goose's options (a session
// locker, Go migrations) beside the SQL files.
func Migrate(ctx context.Context, db *pgxpool.Pool, to int64) error {
	return goosepg.UpTo(ctx, db, files, "sql", to)
}
