// Package bench holds the workshop's database tests and benchmarks: for each
// lesson, tests that the naive and scalable versions agree and that their
// costs grow as the lesson says, and benchmarks at growing sizes.
//
// Every test binary starts its own database, so they all live here, in one.
package bench

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/redistest"
	"works-vs-scales/shop"
)

func TestMain(m *testing.M) { pgtest.Main(m, redistest.Close, pgtest.StopReplica) }

// EnvLarge, set to 1, adds the largest sizes to the benchmarks: more data to
// seed once, and minutes rather than seconds per run.
const EnvLarge = "WORKSHOP_LARGE"

func large() bool { return os.Getenv(EnvLarge) == "1" }

// benchScale is the shop a benchmark over one shop runs on: the small one, or
// the large one when asked.
func benchScale() shop.Scale {
	if large() {
		return shop.Large
	}
	return shop.Small
}

// benchScales are the shops a benchmark over growing tables runs on, up to
// benchScale; only the smallest with -short.
func benchScales() []shop.Scale {
	scales := shop.Ladder(benchScale())
	if testing.Short() {
		return scales[:1]
	}
	return scales
}

// sizes returns the sizes a benchmark runs at: from 10 up by factors of 10 to
// top, or only the smallest with -short, so a quick run still exercises every
// benchmark.
func sizes(top int) []int { return ladder(10, top) }

// ladder returns from, then up by factors of 10 to top; only from with -short.
func ladder(from, top int) []int {
	var steps []int
	for n := from; n <= top; n *= 10 {
		steps = append(steps, n)
	}
	if testing.Short() {
		return steps[:1]
	}
	return steps
}

// reportCounts reports what the database did per iteration of b's loop.
func reportCounts(b *testing.B, counts *pgtest.Counts) {
	b.ReportMetric(float64(counts.Statements())/float64(b.N), "queries/op")
	b.ReportMetric(float64(counts.RoundTrips())/float64(b.N), "round-trips/op")
	b.ReportMetric(float64(counts.Rows())/float64(b.N), "rows/op")
}

// reportLatencies reports the median and the 99th percentile of what callers
// waited, in milliseconds.
func reportLatencies(b *testing.B, latencies []time.Duration) {
	sorted := slices.Sorted(slices.Values(latencies))
	if len(sorted) == 0 {
		b.Fatal("no latencies to report: nothing was measured")
	}
	for _, p := range []int{50, 99} {
		b.ReportMetric(float64(sorted[(len(sorted)-1)*p/100])/float64(time.Millisecond), fmt.Sprintf("p%d-ms", p))
	}
}

func name(key string, value any) string { return fmt.Sprintf("%s=%v", key, value) }
