package stampede

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	naive "works-vs-scales/naive/stampede"
	scalable "works-vs-scales/scalable/stampede"
	"works-vs-scales/shop"
)

// TestConstructorsRefuseNonsense: every constructor of this lesson refuses,
// when it is called, a configuration nothing could work with (no database, a
// timeout that fails every call or never ends), with an error wrapping
// shop.ErrInvalidConfig that names the setting and its value, instead of a
// value that panics or fails at its first call; and accepts a sound one.
func TestConstructorsRefuseNonsense(t *testing.T) {
	benchkit.RefuseNoDatabase(t, map[string]func(*pgxpool.Pool) error{
		"naive/stampede.NewReports":      func(db *pgxpool.Pool) error { _, err := naive.NewReports(db); return err },
		"naive/stampede.NewDashboard":    func(db *pgxpool.Pool) error { _, err := naive.NewDashboard(db); return err },
		"scalable/stampede.NewDashboard": func(db *pgxpool.Pool) error { _, err := scalable.NewDashboard(db); return err },
	})

	t.Run("scalable/stampede.NewReports", func(t *testing.T) {
		db := benchkit.NeverDialled(t)
		_, err := scalable.NewReports(db, time.Second)
		require.NoError(t, err, "a sound configuration")
		_, err = scalable.NewReports(nil, time.Second)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "no database")
		assert.Contains(t, err.Error(), "no database")
		for _, b := range benchkit.BadTimeouts {
			_, err := scalable.NewReports(db, b.Timeout)
			require.ErrorIs(t, err, shop.ErrInvalidConfig, b.Names)
			assert.Contains(t, err.Error(), b.Names, "the error names the setting")
		}
	})
}
