package bench

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	naivebulkhead "works-vs-scales/naive/bulkheads"
	naivecaching "works-vs-scales/naive/caching"
	naivestock "works-vs-scales/naive/races"
	naivestampede "works-vs-scales/naive/stampede"
	scalablebulkhead "works-vs-scales/scalable/bulkheads"
	scalablecaching "works-vs-scales/scalable/caching"
	scalablestock "works-vs-scales/scalable/races"
	scalablestampede "works-vs-scales/scalable/stampede"
	"works-vs-scales/shop"
)

// TestConstructorsRefuseNonsense: every constructor of lessons 6, 7, 11 and
// 12 refuses, when it is called, a configuration nothing could work with (no
// database, a pool missing, a timeout that fails every call or never ends)
// with an error wrapping [shop.ErrInvalidConfig] that names the setting and
// its value, instead of a value that panics or fails at its first call; and
// accepts a sound one. (The payment constructors of lessons 9 and 10 have
// their own table, in TestPaymentConstructorsRefuseNonsense.)
func TestConstructorsRefuseNonsense(t *testing.T) {
	db, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never-dialled")
	require.NoError(t, err)
	t.Cleanup(db.Close)

	// Constructors that take only a database.
	onlyDB := []struct {
		name string
		new  func(*pgxpool.Pool) error
	}{
		{"naive/bulkhead.New", func(db *pgxpool.Pool) error { _, err := naivebulkhead.New(db); return err }},
		{"naive/caching.NewCatalog", func(db *pgxpool.Pool) error { _, err := naivecaching.NewCatalog(db); return err }},
		{"scalable/caching.NewCatalog", func(db *pgxpool.Pool) error { _, err := scalablecaching.NewCatalog(db); return err }},
		{"naive/caching.NewProducts", func(db *pgxpool.Pool) error { _, err := naivecaching.NewProducts(db); return err }},
		{"naive/stampede.NewReports", func(db *pgxpool.Pool) error { _, err := naivestampede.NewReports(db); return err }},
		{"naive/stampede.NewDashboard", func(db *pgxpool.Pool) error { _, err := naivestampede.NewDashboard(db); return err }},
		{"scalable/stampede.NewDashboard", func(db *pgxpool.Pool) error { _, err := scalablestampede.NewDashboard(db); return err }},
		{"naive/stock.NewCoupons", func(db *pgxpool.Pool) error { _, err := naivestock.NewCoupons(db); return err }},
		{"scalable/stock.NewCoupons", func(db *pgxpool.Pool) error { _, err := scalablestock.NewCoupons(db); return err }},
	}
	for _, c := range onlyDB {
		require.NoError(t, c.new(db), "%s: a sound configuration", c.name)
		err := c.new(nil)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "%s: no database", c.name)
		assert.Contains(t, err.Error(), "no database", "%s: the error names the setting", c.name)
	}

	badTimeouts := []struct {
		timeout time.Duration
		names   string
	}{
		{0, "timeout 0s"},
		{-1, "timeout -1ns"},
		{math.MinInt64, "timeout -2562047h"},
		{math.MaxInt64, "timeout 2562047h"},
	}

	t.Run("scalable/stampede.NewReports", func(t *testing.T) {
		_, err := scalablestampede.NewReports(db, time.Second)
		require.NoError(t, err, "a sound configuration")
		_, err = scalablestampede.NewReports(nil, time.Second)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "no database")
		assert.Contains(t, err.Error(), "no database")
		for _, b := range badTimeouts {
			_, err := scalablestampede.NewReports(db, b.timeout)
			require.ErrorIs(t, err, shop.ErrInvalidConfig, b.names)
			assert.Contains(t, err.Error(), b.names, "the error names the setting")
		}
	})

	t.Run("scalable/bulkhead.New", func(t *testing.T) {
		sound := scalablebulkhead.Pools{Orders: db, Search: db, Payments: db}
		_, err := scalablebulkhead.New(sound, scalablebulkhead.DefaultTimeouts)
		require.NoError(t, err, "a sound configuration")
		_, err = scalablebulkhead.New(scalablebulkhead.Pools{}, scalablebulkhead.DefaultTimeouts)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "no pools")
		for workload, drop := range map[string]func(*scalablebulkhead.Pools){
			"orders":   func(p *scalablebulkhead.Pools) { p.Orders = nil },
			"search":   func(p *scalablebulkhead.Pools) { p.Search = nil },
			"payments": func(p *scalablebulkhead.Pools) { p.Payments = nil },
		} {
			pools := sound
			drop(&pools)
			_, err := scalablebulkhead.New(pools, scalablebulkhead.DefaultTimeouts)
			require.ErrorIs(t, err, shop.ErrInvalidConfig, "no %s pool", workload)
			assert.Contains(t, err.Error(), "no "+workload+" pool", "the error names the setting")
		}
		for workload, set := range map[string]func(*scalablebulkhead.Timeouts, time.Duration){
			"orders":   func(to *scalablebulkhead.Timeouts, d time.Duration) { to.Orders = d },
			"search":   func(to *scalablebulkhead.Timeouts, d time.Duration) { to.Search = d },
			"payments": func(to *scalablebulkhead.Timeouts, d time.Duration) { to.Payments = d },
		} {
			for _, b := range badTimeouts {
				timeouts := scalablebulkhead.DefaultTimeouts
				set(&timeouts, b.timeout)
				_, err := scalablebulkhead.New(sound, timeouts)
				require.ErrorIs(t, err, shop.ErrInvalidConfig, "%s %s", workload, b.names)
				assert.Contains(t, err.Error(), workload+" "+b.names, "the error names the setting")
			}
		}
		_, err = scalablebulkhead.New(sound, scalablebulkhead.Timeouts{})
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "no timeouts")
	})

	t.Run("scalable/bulkhead.OpenPools", func(t *testing.T) {
		ctx := context.Background()
		_, err := scalablebulkhead.OpenPools(ctx, nil, scalablebulkhead.DefaultSizes)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "no configuration")
		assert.Contains(t, err.Error(), "no configuration")
		for _, size := range []int32{0, -1, math.MinInt32} {
			sizes := scalablebulkhead.DefaultSizes
			sizes.Search = size
			_, err := scalablebulkhead.OpenPools(ctx, db.Config(), sizes)
			require.ErrorIs(t, err, shop.ErrInvalidConfig, "search size %d", size)
			assert.Contains(t, err.Error(), fmt.Sprintf("search size %d", size), "the error names the setting")
		}
	})
}
