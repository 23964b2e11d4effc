package migrations

import (
	"testing"

	"works-vs-scales/bench/benchkit"
)

// TestTheCheckRunsAtItsSizeInItsTurn: exercise 20's check, whose own pools
// (the requests' 20 beside the migration) do not fit a room's budget of 9, takes the room's turn and runs
// at its full size, within the budget and its excess over it, the harness's
// own connections included, as pg_stat_activity sampled them.
func TestTheCheckRunsAtItsSizeInItsTurn(t *testing.T) {
	benchkit.RequireCheckWithinItsTurn(t, "^TestExercise20CheckPassesOnTheAnswer$", benchkit.RoomBudget, 2*exercise20Requests+4)
}
