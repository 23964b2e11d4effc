package migrations

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// neverDialled is a pool whose server is never asked: every refusal below
// comes before the database is.
func neverDialled(t *testing.T) *pgxpool.Pool {
	t.Helper()
	db, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never-dialled")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestMigrateRefusesWhatCannotRun(t *testing.T) {
	db := neverDialled(t)
	for _, c := range []struct {
		what string
		m    Migrator
		db   *pgxpool.Pool
		to   int64
		want error
	}{
		{"no database", Migrator{}, nil, AddTotal, shop.ErrInvalidConfig},
		{"version 0", Migrator{}, db, 0, ErrUnknownVersion},
		{"a negative version", Migrator{}, db, -1, ErrUnknownVersion},
		{"the lowest version", Migrator{}, db, math.MinInt64, ErrUnknownVersion},
		// Retried for ever, until the context ends.
		{"negative attempts", Migrator{Attempts: -1}, db, AddTotal, shop.ErrInvalidConfig},
		// rand.N of a negative pause panicked at the first retry.
		{"a negative backoff", Migrator{Backoff: -time.Second}, db, AddTotal, shop.ErrInvalidConfig},
		{"a negative longest backoff", Migrator{MaxBackoff: -time.Second}, db, AddTotal, shop.ErrInvalidConfig},
		// The backfill's range went down for ever.
		{"a negative batch", Migrator{BatchSize: -1000}, db, AddTotal, shop.ErrInvalidConfig},
	} {
		err := c.m.Migrate(context.Background(), c.db, c.to)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.what, err, c.want)
		}
	}
	if err := Migrate(context.Background(), nil, AddTotal); !errors.Is(err, shop.ErrInvalidConfig) {
		t.Errorf("Migrate with no database: err = %v", err)
	}
}

func TestTheBackoffNeverOverflows(t *testing.T) {
	for _, c := range []struct{ pause, longest, want time.Duration }{
		{50 * time.Millisecond, 2 * time.Second, 100 * time.Millisecond},
		{time.Second, 2 * time.Second, 2 * time.Second},
		{3 * time.Second, 2 * time.Second, 2 * time.Second},
		// Doubled, these wrapped negative, and rand.N of the next pause
		// panicked.
		{math.MaxInt64/2 + 1, math.MaxInt64, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},
	} {
		if got := nextBackoff(c.pause, c.longest); got != c.want {
			t.Errorf("nextBackoff(%v, %v) = %v, want %v", c.pause, c.longest, got, c.want)
		}
	}
}

func TestABatchEndNeverOverflows(t *testing.T) {
	for _, c := range []struct{ from, size, want int64 }{
		{1, 1000, 1001},
		{-5, 10, 5},
		// from + size wrapped negative: an empty batch, and the next
		// began below the first.
		{1, math.MaxInt64, math.MaxInt64},
		{math.MaxInt64 - 1, 1000, math.MaxInt64},
	} {
		if got := batchEnd(c.from, c.size); got != c.want {
			t.Errorf("batchEnd(%d, %d) = %d, want %d", c.from, c.size, got, c.want)
		}
	}
}
