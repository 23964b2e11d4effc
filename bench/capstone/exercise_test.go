//go:build exercise

package capstone

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/capstone"
)

// TestExercise17 is the trainee's check of lesson 17's exercise, their code in
// exercises/capstone: go run ./cmd/workshop check 17, which runs
// go test -tags exercise -run '^TestExercise17$' ./bench/capstone.
func TestExercise17(t *testing.T) {
	require.NoError(t, checkExercise17(t, exercise.OrdersHandler))
}
