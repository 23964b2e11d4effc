package replicas

import (
	"testing"

	"works-vs-scales/bench/benchkit"
)

// TestBenchmarksStayWithinARoomsBudget: lesson 18's benchmarks, run once each at
// their smallest sizes in a child process under the room's budget
// (WORKSHOP_MAX_CONNS=9: ten trainees on a server of 100), hold no more than
// it on the server, the harness's own connections included, as
// pg_stat_activity sampled them; what needs more skips, naming the budget.
func TestBenchmarksStayWithinARoomsBudget(t *testing.T) {
	benchkit.RequireWithinBudget(t, "^$", ".", benchkit.RoomBudget)
}
