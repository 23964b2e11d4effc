//go:build exercise

package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"works-vs-scales/exercises/writes"
)

// The trainee's check of lesson 14: go test -tags exercise -run '^TestExercise14$' ./bench

func TestExercise14(t *testing.T) {
	require.NoError(t, checkExercise14(t, writes.ImportCSV))
}
