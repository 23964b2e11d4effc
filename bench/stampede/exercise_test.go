//go:build exercise

package stampede

import (
	"testing"

	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/stampede"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// TestExercise07 is the trainee's check of lesson 7's exercise, their code in
// exercises/stampede: go run ./cmd/workshop check 7, which runs
// go test -tags exercise -run '^TestExercise07$' ./bench/stampede.
func TestExercise07(t *testing.T) {
	benchkit.RequireRace(t)
	db := pgtest.ShopClone(t, shop.Small)
	dashboard, err := exercise.NewDashboard(db)
	require.NoError(t, err, "your NewDashboard")
	require.NoError(t, checkExercise07(t, db, dashboard))
}
