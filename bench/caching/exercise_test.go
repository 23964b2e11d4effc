//go:build exercise

package caching

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/caching"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// TestExercise06 is the trainee's check of lesson 6's exercise, their code in
// exercises/caching: go run ./cmd/workshop check 6, which runs
// go test -race -tags exercise -run '^TestExercise06$' ./bench/caching.
func TestExercise06(t *testing.T) {
	benchkit.RequireRace(t)
	require.NoError(t, checkExercise06(t, pgtest.ShopClone(t, shop.Small), func(db *pgxpool.Pool) (categoryCounter, error) { return exercise.NewCatalog(db) }))
}
