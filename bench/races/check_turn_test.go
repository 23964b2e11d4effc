package races

import (
	"testing"

	"works-vs-scales/bench/benchkit"
)

// TestTheCheckRunsAtItsSizeInItsTurn: exercise 12's check, whose own pools
// (the buyers' 8 and the second process's 2) do not fit a room's budget of 9, takes the room's turn and runs
// at its full size, within the budget and its excess over it, the harness's
// own connections included, as pg_stat_activity sampled them.
func TestTheCheckRunsAtItsSizeInItsTurn(t *testing.T) {
	benchkit.RequireCheckWithinItsTurn(t, "^TestExercise12CheckPassesOnTheAnswer$", benchkit.RoomBudget, couponPool+otherPool)
}
