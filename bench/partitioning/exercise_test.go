//go:build exercise

package partitioning

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/partitioning"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// TestExercise19 is the trainee's check of lesson 19's exercise, their code in
// exercises/partitioning: go run ./cmd/workshop check 19, which runs
// go test -tags exercise -run '^TestExercise19$' ./bench/partitioning.
func TestExercise19(t *testing.T) {
	answer := retentionAnswer{exercise.CreateTables, exercise.PrepareMonths, exercise.DeleteBefore}
	require.NoError(t, checkExercise19(t, pgtest.ShopClone(t, shop.Small), answer))
}
