//go:build exercise

package nestedloops

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/nestedloops"
)

// TestExercise05 is the trainee's check of lesson 5's exercise, their code in
// exercises/nestedloops: go run ./cmd/workshop check 5, which runs
// go test -tags exercise -run '^TestExercise05$' ./bench/nestedloops.
func TestExercise05(t *testing.T) {
	require.NoError(t, checkExercise05(t, exercise.CommonCustomers))
}
