package report

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func parseFile(t *testing.T, name string) *Report {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	r, err := Parse(f, name)
	require.NoError(t, err)
	return r
}

// TestParseARealRun reads the output of a real run of lesson 1's benchmarks.
func TestParseARealRun(t *testing.T) {
	r := parseFile(t, "nplusone.txt")
	require.Len(t, r.Benchmarks, 2)
	orders := r.Find("GetUserOrders")
	require.NotNil(t, orders)
	assert.Equal(t, "orders", orders.SizeKey)
	assert.Equal(t, []string{"naive", "batch", "scalable"}, orders.Impls)
	assert.Equal(t, []float64{10, 100, 1000, 10000}, orders.Sizes)
	assert.Subset(t, orders.Units, []string{"sec/op", "queries/op", "round-trips/op", "rows/op", "B/op", "allocs/op"})
	assert.Equal(t, 6, orders.Runs("naive", 10000, "queries/op"))
	queries, ok := orders.Median("naive", 10000, "queries/op")
	require.True(t, ok)
	assert.Equal(t, 10002.0, queries)
	assert.Equal(t, "go1.26.8", r.ConfigValue("go"))
	assert.Contains(t, r.Where(), "PostgreSQL 15.20")
	assert.Empty(t, r.Unplaced)
}

func TestParseSaysWhatItCouldNotPlace(t *testing.T) {
	r := parseFile(t, "synthetic.txt")
	require.Len(t, r.Unplaced, 2)
	assert.Contains(t, r.Unplaced[0], "synthetic.txt:13: Lookup/n=10-2: no impl=")
	assert.Contains(t, r.Unplaced[1], "synthetic.txt:16")
}

func TestExponent(t *testing.T) {
	b := parseFile(t, "synthetic.txt").Find("Lookup")
	k, ok := b.Exponent("naive", timeUnit)
	require.True(t, ok)
	assert.InDelta(t, 1.0, k, 1e-9, "naive grows ×10 per ×10")
	k, ok = b.Exponent("scalable", timeUnit)
	require.True(t, ok)
	assert.InDelta(t, 0.0, k, 1e-9, "scalable does not grow")

	quadratic := &Benchmark{SizeKey: "n", Sizes: []float64{10, 100, 1000}, samples: map[sample][]float64{
		{"naive", 10, timeUnit}: {1}, {"naive", 100, timeUnit}: {100}, {"naive", 1000, timeUnit}: {10000},
	}}
	k, ok = quadratic.Exponent("naive", timeUnit)
	require.True(t, ok)
	assert.InDelta(t, 2.0, k, 1e-9)
}

// TestExponentIsTheTopDecadesSlope builds times with a fixed cost plus a
// known power, t = a + b·n^k, the shape of a query that pays a round trip
// and then scans. One power law fitted over every size is pulled down by the
// small sizes, where the fixed cost dominates; the slope over the top decade
// is the growth the largest sizes show.
func TestExponentIsTheTopDecadesSlope(t *testing.T) {
	for _, k := range []float64{1, 2} {
		// The fixed cost is a thousandth of the time at the largest size.
		sizes := []float64{10, 100, 1000, 10_000, 100_000}
		a, b := 1e-3, 1.0/math.Pow(100_000, k)
		bench := &Benchmark{SizeKey: "n", Sizes: sizes, samples: map[sample][]float64{}}
		for _, n := range sizes {
			bench.samples[sample{"x", n, timeUnit}] = []float64{a + b*math.Pow(n, k)}
		}
		got, ok := bench.Exponent("x", timeUnit)
		require.True(t, ok)
		assert.InDelta(t, k, got, 0.05, "the top decade's slope of a + b·n^%v", k)
		old := leastSquaresExponent(bench, "x", timeUnit)
		assert.Less(t, old, k-0.2, "one power law over every size underestimates n^%v", k)
		lo, hi, ok := bench.TopDecade()
		require.True(t, ok)
		assert.Equal(t, sizes[len(sizes)-2], lo)
		assert.Equal(t, sizes[len(sizes)-1], hi)
	}

	// Sizes that are not powers of ten: the top decade starts at the
	// largest size at most a tenth of the largest.
	uneven := &Benchmark{SizeKey: "orders", Sizes: []float64{482, 11_667, 116_675, 1_166_750}}
	lo, hi, ok := uneven.TopDecade()
	require.True(t, ok)
	assert.Equal(t, 116_675.0, lo)
	assert.Equal(t, 1_166_750.0, hi)
	// Less than a decade apart: the whole span.
	narrow := &Benchmark{SizeKey: "payments", Sizes: []float64{10, 20, 50}}
	lo, hi, ok = narrow.TopDecade()
	require.True(t, ok)
	assert.Equal(t, []float64{10, 50}, []float64{lo, hi})
}

// leastSquaresExponent is the old fit, one power law over every size, kept
// here to show what it gets wrong.
func leastSquaresExponent(b *Benchmark, impl, unit string) float64 {
	var xs, ys []float64
	for _, size := range b.Sizes {
		v, _ := b.Median(impl, size, unit)
		xs, ys = append(xs, math.Log(size)), append(ys, math.Log(v))
	}
	var meanX, meanY float64
	for i := range xs {
		meanX += xs[i] / float64(len(xs))
		meanY += ys[i] / float64(len(ys))
	}
	var cov, varX float64
	for i := range xs {
		cov += (xs[i] - meanX) * (ys[i] - meanY)
		varX += (xs[i] - meanX) * (xs[i] - meanX)
	}
	return cov / varX
}

func TestARateIsNotASize(t *testing.T) {
	run := "BenchmarkPay/impl=naive/failures%=10-2 1 100 ns/op\nBenchmarkPay/impl=naive/failures%=50-2 1 900 ns/op\n"
	r, err := Parse(strings.NewReader(run), "rates.txt")
	require.NoError(t, err)
	require.Empty(t, r.Unplaced)
	b := r.Find("Pay")
	assert.Equal(t, "failures%", b.SizeKey)
	assert.Equal(t, []float64{10, 50}, b.Sizes)
	assert.False(t, b.Grows(), "a rate is tabled, not fitted or charted")
	_, ok := b.Exponent("naive", timeUnit)
	assert.False(t, ok)
}

func TestMarkdown(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, parseFile(t, "synthetic.txt").WriteMarkdown(&out, "synthetic.txt"))
	golden(t, "synthetic.md", out.Bytes())
}

func TestChartRenders(t *testing.T) {
	r := parseFile(t, "synthetic.txt")
	svg, err := r.Find("Lookup").ChartSVG(r.Machine())
	require.NoError(t, err)
	for _, want := range []string{"<svg", "Lookup: time per operation against n", "n (log scale)", "time per operation, µs (log scale)", ">naive<", ">scalable<"} {
		assert.Contains(t, string(svg), want)
	}
	golden(t, "synthetic-Lookup.svg", svg)

	_, err = r.Find("Insert").ChartSVG(r.Machine())
	assert.ErrorContains(t, err, "two sizes")
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./internal/report -update to create it")
	assert.Equal(t, strings.TrimSpace(string(want)), strings.TrimSpace(string(got)))
}

func TestDiffersOnlyBeyondNoise(t *testing.T) {
	b := &Benchmark{samples: map[sample][]float64{
		{"naive", 0, timeUnit}:        {10, 11, 12, 10.5, 11.5, 10.2},
		{"overlap", 0, timeUnit}:      {10.1, 11.9, 10.4, 11.2, 10.9, 11.1},
		{"faster", 0, timeUnit}:       {5, 5.5, 6, 5.2, 5.8, 5.1},
		{"two-runs", 0, timeUnit}:     {5, 5.5},
		{"naive", 0, "queries/op"}:    {100},
		{"scalable", 0, "queries/op"}: {1},
		{"same", 0, "queries/op"}:     {100},
	}}
	assert.False(t, b.Differs("naive", "overlap", 0, timeUnit), "samples that overlap are noise")
	assert.True(t, b.Differs("naive", "faster", 0, timeUnit), "six runs apart are a difference")
	assert.False(t, b.Differs("naive", "two-runs", 0, timeUnit), "six runs against two cannot reach p < 0.05")
	assert.True(t, b.Differs("naive", "scalable", 0, "queries/op"), "counts that do not vary are exact")
	b.samples[sample{"one-run", 0, timeUnit}] = []float64{1}
	assert.False(t, b.Differs("naive", "one-run", 0, timeUnit), "one run of a time is not exact")
	assert.False(t, b.Differs("naive", "same", 0, "queries/op"))
	assert.False(t, b.Differs("naive", "missing", 0, timeUnit))
	assert.Equal(t, []float64{10, 11, 12, 10.5, 11.5, 10.2}, b.samples[sample{"naive", 0, timeUnit}], "the samples keep their order")
}
