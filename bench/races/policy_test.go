package races

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/report"
)

// TestTheOptimisticRowUsesTheBestPolicySwept holds bestOptimisticPolicy to
// its doc comment against the committed sweep: of the policies that gave up
// least on the hot row, the one that sold fastest. Measured anew, the sweep
// may pick another; this test then says which.
func TestTheOptimisticRowUsesTheBestPolicySwept(t *testing.T) {
	f, err := os.Open("../../lessons/results/12-races-policy.bench")
	require.NoError(t, err)
	defer f.Close()
	r, err := report.Parse(f, "12-races-policy.bench")
	require.NoError(t, err)
	hot := r.Find("OptimisticPolicyHot")
	require.NotNil(t, hot)
	require.NotEmpty(t, hot.Sizes)
	size := hot.Sizes[len(hot.Sizes)-1]
	best, bestGaveUp, bestRate := "", 0.0, 0.0
	for _, p := range optimisticPolicies {
		gaveUp, ok1 := hot.Median(p.name, size, "gave-up-%")
		rate, ok2 := hot.Median(p.name, size, "buys/s")
		require.True(t, ok1 && ok2, "the sweep has %s", p.name)
		if best == "" || gaveUp < bestGaveUp || gaveUp == bestGaveUp && rate > bestRate {
			best, bestGaveUp, bestRate = p.name, gaveUp, rate
		}
	}
	var chosen string
	for _, p := range optimisticPolicies {
		if p.policy.MaxAttempts == bestOptimisticPolicy.MaxAttempts && p.policy.BaseDelay == bestOptimisticPolicy.BaseDelay && p.policy.MaxDelay == bestOptimisticPolicy.MaxDelay {
			chosen = p.name
		}
	}
	require.Equal(t, best, chosen, "the sweep's best policy on the hot row (fewest give-ups, then most buys/s) is not bestOptimisticPolicy")
}
