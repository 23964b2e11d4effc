//go:build exercise

package retries

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/retries"
	"works-vs-scales/shop/gateway"
)

// TestExercise09 is the trainee's check of lesson 9's exercise, their code in
// exercises/retries: go run ./cmd/workshop check 9, which runs
// go test -tags exercise -run '^TestExercise09$' ./bench/retries.
func TestExercise09(t *testing.T) {
	benchkit.RequireRace(t)
	require.NoError(t, checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		payments, err := exercise.NewPayments(db, gw)
		require.NoError(t, err)
		return payments
	}))
}
