package capstone

import (
	"testing"

	"works-vs-scales/bench/benchkit"
)

// TestServicesStayWithinARoomsBudget: lesson 17's tests (the wirings of
// cmd/shopd they start, in the test's process or in one of their own, and
// the exercise's check on its reference and wrong answers), run once each
// with -short in a child process under the room's budget
// (WORKSHOP_MAX_CONNS=9: ten trainees on a server of 100), hold no more than
// it on the server, the harness's own connections included, as
// pg_stat_activity sampled them: a wiring whose pools need more
// (shopd.Conns) skips, naming the budget.
func TestServicesStayWithinARoomsBudget(t *testing.T) {
	benchkit.RequireWithinBudget(t, ".", "^$", benchkit.RoomBudget)
}
