package bulkheads_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/workshopenv"
)

// TestBenchmarksStayWithinARoomsBudget: lesson 11's benchmark, run once at
// its smallest size in a child process, holds no more than a room's budget
// on the trainee's databases, as pg_stat_activity sampled them: at a budget
// of 11 its two versions' 8 connections and the harness's run; at 4
// they do not fit, and it skips, saying why.
func TestBenchmarksStayWithinARoomsBudget(t *testing.T) {
	for _, budget := range []int{11, 4} {
		peak, out, err := benchkit.PeakConnsOfBenchmarks(t, ".", budget)
		require.NoError(t, err, "%s", out)
		t.Logf("budget %d: peak %+v", budget, peak)
		assert.LessOrEqual(t, peak.Databases, budget, "connections on the trainee's databases\n%s", out)
		assert.LessOrEqual(t, peak.Maintenance, workshopenv.HarnessConns, "the harness's own, on the maintenance database: its stated reserve")
		if budget == 11 {
			require.Contains(t, out, "BenchmarkOrdersWhileSearchIsStuck/impl=bulkhead/callers=10-", "it runs within a budget of 11")
			assert.Greater(t, peak.Databases, 8-1, "the sampler saw the benchmark's connections (%d samples)", peak.Samples)
			continue
		}
		assert.Contains(t, out, "8 connections are above this trainee's budget: WORKSHOP_MAX_CONNS=4 leaves 1", "the benchmark says why it skips")
	}
}
