package connections_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"works-vs-scales/bench/benchkit"
)

// TestBenchmarksStayWithinARoomsBudget: under a room's budget of 8
// connections a trainee (WORKSHOP_MAX_CONNS=8, the harness's 4 included),
// lesson 13's benchmarks, run once each at their smallest sizes in a child
// process, never hold more than the budget on the server, as
// pg_stat_activity sampled them; the pools they hold fixed are clamped and
// say so in their names, and a point of a sweep over pool sizes above it is
// skipped.
func TestBenchmarksStayWithinARoomsBudget(t *testing.T) {
	peak, out := benchkit.RequireWithinBudget(t, "^$", ".", 8)
	assert.Positive(t, peak.Databases, "the sampler saw the benchmarks' connections (%d samples)", peak.Samples)
	assert.Contains(t, out, "BenchmarkConnect/impl=naive/callers=1/budget-pool=1", "a fixed pool of 10 is clamped, and labelled")
	assert.Contains(t, out, "BenchmarkFastQueryAtPaymentRate/impl=naive/payments-per-s=", "the rate ladder runs")
	assert.Contains(t, out, "/budget-pool=1", "with its pool clamped")
	assert.Contains(t, out, "2 connections are above this trainee's budget: WORKSHOP_MAX_CONNS=8 leaves 1", "a point of the pool-size sweep above it skips, saying why")
}
