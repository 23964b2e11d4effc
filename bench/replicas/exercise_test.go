//go:build exercise

package replicas

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	exercise "works-vs-scales/exercises/replicas"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
)

// TestExercise18 is the trainee's check of lesson 18's exercise, their code in
// exercises/replicas: go run ./cmd/workshop check 18, which runs
// go test -race -tags exercise -run '^TestExercise18$' ./bench/replicas.
func TestExercise18(t *testing.T) {
	benchkit.RequireRace(t)
	if pgtest.RoomReplica() {
		// Skipped, the check would print ok for an exercise it never checked.
		t.Fatalf("exercise 18's check reads a replica %v behind, and the room's replica (%s) is everyone's: the harness sets no delay on it. "+
			"Check your answer with a replica of your own: unset %s (the harness starts one; it needs PostgreSQL's server binaries or Docker), "+
			"or point it at one only you use and set %s=1 (lessons/TRAINER.md, \"One replica for the room\")",
			exercise18Lag, workshopenv.ReplicaURL, workshopenv.ReplicaURL, workshopenv.ReplicaOwn)
	}
	require.NoError(t, checkExercise18(t, func(p, r *pgxpool.Pool) (replicaStore, error) { return exercise.New(p, r) }))
}
