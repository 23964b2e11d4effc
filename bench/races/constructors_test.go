package races

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/bench/benchkit"
	naive "works-vs-scales/naive/races"
	scalable "works-vs-scales/scalable/races"
)

// TestConstructorsRefuseNonsense: every constructor of this lesson refuses,
// when it is called, a configuration nothing could work with, with an error
// wrapping shop.ErrInvalidConfig that names the setting, instead of a value
// that panics or fails at its first call; and accepts a sound one.
func TestConstructorsRefuseNonsense(t *testing.T) {
	benchkit.RefuseNoDatabase(t, map[string]func(*pgxpool.Pool) error{
		"naive/races.NewCoupons":    func(db *pgxpool.Pool) error { _, err := naive.NewCoupons(db); return err },
		"scalable/races.NewCoupons": func(db *pgxpool.Pool) error { _, err := scalable.NewCoupons(db); return err },
	})
}
