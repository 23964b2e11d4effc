//go:build exercise

package replicas

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/replicas"
)

// TestExercise18 is the trainee's check of lesson 18's exercise, their code in
// exercises/replicas: go run ./cmd/workshop check 18, which runs
// go test -race -tags exercise -run '^TestExercise18$' ./bench/replicas.
func TestExercise18(t *testing.T) {
	benchkit.RequireRace(t)
	require.NoError(t, checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return exercise.New(p, r) }))
}
