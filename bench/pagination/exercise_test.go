//go:build exercise

package pagination

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/pagination"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// TestExercise02 is the trainee's check of lesson 2's exercise, their code in
// exercises/pagination: go run ./cmd/workshop check 2, which runs
// go test -tags exercise -run '^TestExercise02$' ./bench/pagination.
func TestExercise02(t *testing.T) {
	require.NoError(t, checkExercise02(t, pgtest.ShopClone(t, shop.Small), exercise.ListFeedPage))
}
