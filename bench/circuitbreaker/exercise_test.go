//go:build exercise

package circuitbreaker

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/circuitbreaker"
	"works-vs-scales/shop/gateway"
)

// TestExercise10 is the trainee's check of lesson 10's exercise, their code in
// exercises/circuitbreaker: go run ./cmd/workshop check 10, which runs
// go test -tags exercise -run '^TestExercise10$' ./bench/circuitbreaker.
func TestExercise10(t *testing.T) {
	benchkit.RequireRace(t)
	require.NoError(t, checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
		payments, err := exercise.NewPayments(db, gw, timeout)
		require.NoError(t, err)
		return payments
	}))
}
