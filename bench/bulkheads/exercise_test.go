//go:build exercise

package bulkheads

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/bulkheads"
)

// TestExercise11 is the trainee's check of lesson 11's exercise, their code in
// exercises/bulkheads: go run ./cmd/workshop check 11, which runs
// go test -tags exercise -run '^TestExercise11$' ./bench/bulkheads.
func TestExercise11(t *testing.T) {
	require.NoError(t, checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) { return exercise.New(db) }))
}
