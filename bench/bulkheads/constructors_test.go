package bulkheads

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	naive "works-vs-scales/naive/bulkheads"
	scalable "works-vs-scales/scalable/bulkheads"
	"works-vs-scales/shop"
)

// TestConstructorsRefuseNonsense: every constructor of this lesson refuses,
// when it is called, a configuration nothing could work with (no database, a
// pool missing, a timeout that fails every call or never ends), with an error
// wrapping shop.ErrInvalidConfig that names the setting and its value,
// instead of a value that panics or fails at its first call; and accepts a
// sound one.
func TestConstructorsRefuseNonsense(t *testing.T) {
	benchkit.RefuseNoDatabase(t, map[string]func(*pgxpool.Pool) error{
		"naive/bulkheads.New": func(db *pgxpool.Pool) error { _, err := naive.New(db); return err },
	})

	t.Run("scalable/bulkheads.New", func(t *testing.T) {
		db := benchkit.NeverDialled(t)
		sound := scalable.Pools{Orders: db, Search: db, Payments: db}
		_, err := scalable.New(sound, scalable.DefaultTimeouts)
		require.NoError(t, err, "a sound configuration")
		_, err = scalable.New(scalable.Pools{}, scalable.DefaultTimeouts)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "no pools")
		for workload, drop := range map[string]func(*scalable.Pools){
			"orders":   func(p *scalable.Pools) { p.Orders = nil },
			"search":   func(p *scalable.Pools) { p.Search = nil },
			"payments": func(p *scalable.Pools) { p.Payments = nil },
		} {
			pools := sound
			drop(&pools)
			_, err := scalable.New(pools, scalable.DefaultTimeouts)
			require.ErrorIs(t, err, shop.ErrInvalidConfig, "no %s pool", workload)
			assert.Contains(t, err.Error(), "no "+workload+" pool", "the error names the setting")
		}
		for workload, set := range map[string]func(*scalable.Timeouts, time.Duration){
			"orders":   func(to *scalable.Timeouts, d time.Duration) { to.Orders = d },
			"search":   func(to *scalable.Timeouts, d time.Duration) { to.Search = d },
			"payments": func(to *scalable.Timeouts, d time.Duration) { to.Payments = d },
		} {
			for _, b := range benchkit.BadTimeouts {
				timeouts := scalable.DefaultTimeouts
				set(&timeouts, b.Timeout)
				_, err := scalable.New(sound, timeouts)
				require.ErrorIs(t, err, shop.ErrInvalidConfig, "%s %s", workload, b.Names)
				assert.Contains(t, err.Error(), workload+" "+b.Names, "the error names the setting")
			}
		}
		_, err = scalable.New(sound, scalable.Timeouts{})
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "no timeouts")
	})

	t.Run("scalable/bulkheads.OpenPools", func(t *testing.T) {
		db := benchkit.NeverDialled(t)
		ctx := context.Background()
		_, err := scalable.OpenPools(ctx, nil, scalable.DefaultSizes)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "no configuration")
		assert.Contains(t, err.Error(), "no configuration")
		for _, size := range []int32{0, -1, math.MinInt32} {
			sizes := scalable.DefaultSizes
			sizes.Search = size
			_, err := scalable.OpenPools(ctx, db.Config(), sizes)
			require.ErrorIs(t, err, shop.ErrInvalidConfig, "search size %d", size)
			assert.Contains(t, err.Error(), fmt.Sprintf("search size %d", size), "the error names the setting")
		}
	})
}
