//go:build exercise

package bench

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	exerciseconns "works-vs-scales/exercises/connections"
	naiveconns "works-vs-scales/naive/connections"
)

// The trainee's check of lesson 13: go test -tags exercise -run '^TestExercise13$' ./bench

func TestExercise13(t *testing.T) {
	require.NoError(t, checkExercise13(t, func(db *pgxpool.Pool, gw naiveconns.Charger) (slowPayer, error) {
		return exerciseconns.NewPayments(db, gw)
	}))
}
