package migrations

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

func TestMigrateRefusesWhatCannotRun(t *testing.T) {
	db, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never-dialled")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := Migrate(context.Background(), nil, AddTotal); !errors.Is(err, shop.ErrInvalidConfig) {
		t.Errorf("no database: err = %v, want %v", err, shop.ErrInvalidConfig)
	}
	for _, to := range []int64{0, -1, math.MinInt64} {
		if err := Migrate(context.Background(), db, to); !errors.Is(err, ErrUnknownVersion) {
			t.Errorf("version %d: err = %v, want %v", to, err, ErrUnknownVersion)
		}
	}
}
