//go:build exercise

package validation

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/validation"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// TestExercise08 is the trainee's check of lesson 8's exercise, their code in
// exercises/validation: go run ./cmd/workshop check 8, which runs
// go test -tags exercise -run '^TestExercise08$' ./bench/validation.
func TestExercise08(t *testing.T) {
	require.NoError(t, checkExercise08(t, pgtest.ShopClone(t, shop.Small), exercise.PaymentsInCurrency))
}
