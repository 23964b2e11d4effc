//go:build exercise

package bench

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	mine "works-vs-scales/exercises/replicas"
)

// The trainee's check of lesson 18: go test -tags exercise -run '^TestExercise18$' ./bench

func TestExercise18(t *testing.T) {
	require.NoError(t, checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return mine.New(p, r) }))
}
