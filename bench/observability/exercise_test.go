//go:build exercise

package observability

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/observability"
)

// TestExercise15 is the trainee's check of lesson 15's exercise, their code in
// exercises/observability: go run ./cmd/workshop check 15, which runs
// go test -tags exercise -run '^TestExercise15$' ./bench/observability.
func TestExercise15(t *testing.T) {
	t.Logf("the trace to read:\n%s", checkoutWaterfall(t, 100))
	require.NoError(t, checkExercise15(t, exercise.LoyaltyPoints))
}
