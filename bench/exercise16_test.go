//go:build exercise

package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"works-vs-scales/exercises/overload"
)

// The trainee's check of lesson 16: go test -tags exercise -run '^TestExercise16$' ./bench

func TestExercise16(t *testing.T) {
	require.NoError(t, checkExercise16(t, overload.Limit))
}
