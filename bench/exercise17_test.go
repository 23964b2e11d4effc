//go:build exercise

package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"works-vs-scales/exercises/capstone"
)

// The trainee's check of lesson 17: go test -tags exercise -run '^TestExercise17$' ./bench

func TestExercise17(t *testing.T) {
	require.NoError(t, checkExercise17(t, capstone.OrdersHandler))
}
