package connections

import (
	"testing"

	"works-vs-scales/bench/benchkit"
)

// TestTheCheckRunsAtItsSizeInItsTurn: exercise 13's check, whose own pools
// (the slow payments' 4) do not fit a room's budget of 9, takes the room's turn and runs
// at its full size, within the budget and its excess over it, the harness's
// own connections included, as pg_stat_activity sampled them.
func TestTheCheckRunsAtItsSizeInItsTurn(t *testing.T) {
	benchkit.RequireCheckWithinItsTurn(t, "^TestExercise13CheckPassesOnTheAnswer$", benchkit.RoomBudget, slowPayPoolSize)
}
