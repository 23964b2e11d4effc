package migrations

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"works-vs-scales/bench/benchkit"
)

// TestBenchmarksStayWithinARoomsBudget: lesson 20's benchmarks, run once each
// at their smallest sizes in a child process, hold no more than a room's
// budget on the server, the harness's own connections included, as
// pg_stat_activity sampled them: at a budget of 15 the service's pool and the
// benchmark's own share what it leaves, 4 each, and say so in their names
// (the service in its process of its own sized as labelled); at the room's 9
// (WORKSHOP_MAX_CONNS=9: ten trainees on a server of 100) they do not fit,
// and skip, naming the budget.
func TestBenchmarksStayWithinARoomsBudget(t *testing.T) {
	for _, budget := range []int{15, benchkit.RoomBudget} {
		_, out := benchkit.RequireWithinBudget(t, "^$", ".", budget)
		if budget == 15 {
			assert.Contains(t, out, "BenchmarkLockQueue/impl=scalable/budget-pool=4", "the pools are clamped, and labelled")
			continue
		}
		assert.Contains(t, out, "4 connections are above this trainee's budget: WORKSHOP_MAX_CONNS=9 leaves 2", "the benchmarks say why they skip")
	}
}
