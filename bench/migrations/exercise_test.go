//go:build exercise

package migrations

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/migrations"
)

// TestExercise20 is the trainee's check of lesson 20's exercise, their code in
// exercises/migrations: go run ./cmd/workshop check 20, which runs
// go test -tags exercise -run '^TestExercise20$' ./bench/migrations.
func TestExercise20(t *testing.T) {
	require.NoError(t, checkExercise20(t, exercise.Migrate))
}
