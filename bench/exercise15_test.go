//go:build exercise

package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/observability"
)

// The trainee's check of lesson 15: go test -tags exercise -run '^TestExercise15$' -v ./bench

func TestExercise15(t *testing.T) {
	t.Logf("the trace to read:\n%s", checkoutWaterfall(t, 100))
	require.NoError(t, checkExercise15(t, exercise.LoyaltyPoints))
}
