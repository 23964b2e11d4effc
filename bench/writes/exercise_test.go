//go:build exercise

package writes

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/writes"
)

// TestExercise14 is the trainee's check of lesson 14's exercise, their code in
// exercises/writes: go run ./cmd/workshop check 14, which runs
// go test -tags exercise -run '^TestExercise14$' ./bench/writes.
func TestExercise14(t *testing.T) {
	require.NoError(t, checkExercise14(t, exercise.ImportCSV))
}
