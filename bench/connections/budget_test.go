package connections_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/workshopenv"
)

// TestBenchmarksStayWithinARoomsBudget: under a room's budget of 4
// connections a trainee (WORKSHOP_MAX_CONNS=4), lesson 13's benchmarks, run
// once each at their smallest sizes in a child process, never hold more than
// the budget on the trainee's databases, as pg_stat_activity sampled them;
// the pools they hold fixed are clamped and say so in their names, and a
// point of a sweep over pool sizes above it is skipped.
func TestBenchmarksStayWithinARoomsBudget(t *testing.T) {
	const budget = 4
	peak, out, err := benchkit.PeakConnsOfBenchmarks(t, ".", budget)
	require.NoError(t, err, "%s", out)
	t.Logf("peak: %+v", peak)
	require.Positive(t, peak.Databases, "the sampler saw the benchmarks' connections (%d samples)", peak.Samples)
	assert.LessOrEqual(t, peak.Databases, budget, "connections on the trainee's databases\n%s", out)
	assert.LessOrEqual(t, peak.Maintenance, workshopenv.HarnessConns, "the harness's own, on the maintenance database: its stated reserve")
	assert.Contains(t, out, "BenchmarkConnect/impl=naive/callers=1/budget-pool=1", "a fixed pool of 10 is clamped, and labelled")
	assert.Contains(t, out, "BenchmarkFastQueryAtPaymentRate/impl=naive/payments-per-s=", "the rate ladder runs")
	assert.Contains(t, out, "/budget-pool=1", "with its pool clamped")
	assert.Contains(t, out, "2 connections are above this trainee's budget: WORKSHOP_MAX_CONNS=4 leaves 1", "a point of the pool-size sweep above it skips, saying why")
}
