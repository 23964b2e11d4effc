package circuitbreaker

import (
	"testing"

	"works-vs-scales/bench/benchkit"
)

// TestTheCheckRunsAtItsSizeInItsTurn: exercise 10's check, whose own pools
// (the outage's 4, open still, and two
// instances' 4 each on the fake clock) do not fit a room's budget of 9, takes the room's turn and runs
// at its full size, within the budget and its excess over it, the harness's
// own connections included, as pg_stat_activity sampled them.
func TestTheCheckRunsAtItsSizeInItsTurn(t *testing.T) {
	benchkit.RequireCheckWithinItsTurn(t, "^TestExercise10CheckPassesOnTheAnswer$", benchkit.RoomBudget, outageWorkers+4+4)
}
