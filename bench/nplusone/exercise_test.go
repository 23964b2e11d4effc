//go:build exercise

package nplusone

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/nplusone"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// TestExercise01 is the trainee's check of lesson 1's exercise, their code in
// exercises/nplusone: go run ./cmd/workshop check 1, which runs
// go test -tags exercise -run '^TestExercise01$' ./bench/nplusone.
func TestExercise01(t *testing.T) {
	require.NoError(t, checkExercise01(t, pgtest.ShopClone(t, shop.Small), exercise.ListPostsWithComments))
}
