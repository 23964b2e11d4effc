package replicas

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// unconnectedPool is a pool that never connects: New and SetMaxWait ask
// nothing of the database.
func unconnectedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestNewRefusesAMissingPool(t *testing.T) {
	pool := unconnectedPool(t)
	for _, c := range []struct {
		name             string
		primary, replica *pgxpool.Pool
	}{{"none", nil, nil}, {"no primary", nil, pool}, {"no replica", pool, nil}} {
		store, err := New(c.primary, c.replica)
		if store != nil || !errors.Is(err, shop.ErrInvalidConfig) {
			t.Errorf("%s: New = %v, %v; want nil and shop.ErrInvalidConfig", c.name, store, err)
		}
	}
}

func TestSetMaxWait(t *testing.T) {
	store, err := New(unconnectedPool(t), unconnectedPool(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{-1, -time.Second, math.MinInt64} {
		if err := store.SetMaxWait(d); !errors.Is(err, shop.ErrInvalidConfig) {
			t.Errorf("SetMaxWait(%v) = %v; want shop.ErrInvalidConfig", d, err)
		}
	}
	if got := time.Duration(store.maxWait.Load()); got != DefaultMaxWait {
		t.Errorf("after refused waits, max wait %v; want the default %v", got, DefaultMaxWait)
	}
	for _, d := range []time.Duration{0, time.Millisecond, math.MaxInt64} {
		if err := store.SetMaxWait(d); err != nil {
			t.Errorf("SetMaxWait(%v) = %v", d, err)
		}
	}
	if got := store.Stats(); got != (Stats{}) {
		t.Errorf("a new Store's stats: %+v; want zero", got)
	}
}
