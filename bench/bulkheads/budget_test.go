package bulkheads_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
)

// TestBenchmarksStayWithinARoomsBudget: lesson 11's benchmark, run once at
// its smallest size in a child process, holds no more than a room's budget
// on the server, the harness's own included, as pg_stat_activity sampled
// them: at a budget of 15 its two versions' 8 connections, the harness's
// pools and its 4; at the room's 9 they do not fit, and it skips, saying why.
func TestBenchmarksStayWithinARoomsBudget(t *testing.T) {
	for _, budget := range []int{15, benchkit.RoomBudget} {
		peak, out := benchkit.RequireWithinBudget(t, "^$", ".", budget)
		if budget == 15 {
			require.Contains(t, out, "BenchmarkOrdersWhileSearchIsStuck/impl=bulkhead/callers=10-", "it runs within a budget of 15")
			assert.Greater(t, peak.Databases, 8-1, "the sampler saw the benchmark's connections (%d samples)", peak.Samples)
			continue
		}
		assert.Contains(t, out, "8 connections are above this trainee's budget: WORKSHOP_MAX_CONNS=9 leaves 2", "the benchmark says why it skips")
	}
}
