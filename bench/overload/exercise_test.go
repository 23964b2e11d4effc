//go:build exercise

package overload

import (
	"testing"

	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/overload"
)

// TestExercise16 is the trainee's check of lesson 16's exercise, their code in
// exercises/overload: go run ./cmd/workshop check 16, which runs
// go test -race -tags exercise -run '^TestExercise16$' ./bench/overload.
func TestExercise16(t *testing.T) {
	benchkit.RequireRace(t)
	require.NoError(t, checkExercise16(t, exercise.Limit))
}
