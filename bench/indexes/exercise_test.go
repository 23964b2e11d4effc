//go:build exercise

package indexes

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/indexes"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// TestExercise03 is the trainee's check of lesson 3's exercise, their code in
// exercises/indexes: go run ./cmd/workshop check 3, which runs
// go test -tags exercise -run '^TestExercise03$' ./bench/indexes.
func TestExercise03(t *testing.T) {
	require.NoError(t, checkExercise03(t, pgtest.ShopClone(t, shop.Small), exercise.ProductSalesIndex))
}
