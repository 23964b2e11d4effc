//go:build exercise

package races

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/races"
)

// TestExercise12 is the trainee's check of lesson 12's exercise, their code in
// exercises/races: go run ./cmd/workshop check 12, which runs
// go test -race -tags exercise -run '^TestExercise12$' ./bench/races.
func TestExercise12(t *testing.T) {
	benchkit.RequireRace(t)
	require.NoError(t, checkExercise12(t, exercise.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return exercise.NewCoupons(db) }))
}
