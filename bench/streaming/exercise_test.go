//go:build exercise

package streaming

import (
	"testing"

	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/streaming"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// TestExercise04 is the trainee's check of lesson 4's exercise, their code in
// exercises/streaming: go run ./cmd/workshop check 4, which runs
// go test -tags exercise -run '^TestExercise04$' ./bench/streaming.
func TestExercise04(t *testing.T) {
	require.NoError(t, checkExercise04(t, pgtest.Shop(t, shop.Small), exercise.ExportOrderItemsCSV))
}
