//go:build exercise

package connections

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/connections"
	naive "works-vs-scales/naive/connections"
)

// TestExercise13 is the trainee's check of lesson 13's exercise, their code in
// exercises/connections: go run ./cmd/workshop check 13, which runs
// go test -race -tags exercise -run '^TestExercise13$' ./bench/connections.
func TestExercise13(t *testing.T) {
	benchkit.RequireRace(t)
	require.NoError(t, checkExercise13(t, func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error) {
		return exercise.NewPayments(db, gw)
	}))
}
