package report

import (
	"bytes"
	"flag"
	"fmt"
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
	for _, want := range []string{"<svg", "Lookup: time per operation against n", "n (log scale)", "time per operation, µs (log scale)", ">naive (top decade n^1.0)<", ">scalable (top decade n^0.0)<"} {
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
		{"one-overlap", 0, timeUnit}:  {6, 7, 8, 9, 9.5, 10.1},
		{"naive", 0, "queries/op"}:    {100},
		{"scalable", 0, "queries/op"}: {1},
		{"same", 0, "queries/op"}:     {100},
	}}
	assert.False(t, b.Differs("naive", "overlap", 0, timeUnit), "samples that overlap are noise")
	assert.True(t, b.Differs("naive", "faster", 0, timeUnit), "six runs apart are a difference")
	assert.False(t, b.Differs("naive", "two-runs", 0, timeUnit), "six runs against two cannot reach p < 0.05")
	assert.False(t, b.Differs("naive", "one-overlap", 0, timeUnit), "ranges that overlap print no ratio, though the U test alone finds p < 0.05")
	assert.True(t, b.Differs("naive", "scalable", 0, "queries/op"), "counts that do not vary are exact")
	b.samples[sample{"one-run", 0, timeUnit}] = []float64{1}
	assert.False(t, b.Differs("naive", "one-run", 0, timeUnit), "one run of a time is not exact")
	assert.False(t, b.Differs("naive", "same", 0, "queries/op"))
	assert.False(t, b.Differs("naive", "missing", 0, timeUnit))
	assert.Equal(t, []float64{10, 11, 12, 10.5, 11.5, 10.2}, b.samples[sample{"naive", 0, timeUnit}], "the samples keep their order")
}

func TestParseFailsOnAFileWithNoResults(t *testing.T) {
	for name, text := range map[string]string{
		"empty":      "",
		"prose":      "# Lesson 1\n\nNot a benchmark.\n",
		"failed run": "go: go1.26.8\n--- FAIL: TestX\nFAIL\n",
		"unplaced":   "BenchmarkX/n=10-2 1 100 ns/op\n",
	} {
		_, err := Parse(strings.NewReader(text), name+".txt")
		assert.ErrorIs(t, err, ErrNoResults, name)
	}
}

func TestParseIgnoresTheHarnessStatusLines(t *testing.T) {
	run := "go: go1.26.8\npgtest: 3 database(s) left by interrupted runs (wvs_clone_1); drop them with: go run ./cmd/dropdbs -leftovers\n" +
		"BenchmarkX/impl=naive-2 1 100 ns/op\n"
	r, err := Parse(strings.NewReader(run), "status.txt")
	require.NoError(t, err)
	assert.Equal(t, []KeyValue{{"go", "go1.26.8"}}, r.Config)
	assert.NotContains(t, r.Where(), "pgtest")
}

// TestComparisonShowsBothRunsAndTheirMachines compares a committed run with a
// trainee's: six runs a side, the trainee's naive twice as slow, the
// scalable version within noise, and a size only the trainee measured.
func TestComparisonShowsBothRunsAndTheirMachines(t *testing.T) {
	committed := "cpu: Committed CPU\ngo: go1.26.8\n"
	mine := "cpu: My Laptop\ngo: go1.26.9\npgtest: 1 database(s) left by interrupted runs\n"
	for i := range 6 {
		committed += fmt.Sprintf("BenchmarkLookup/impl=naive/n=10-2 1 %d ns/op 10 queries/op\n", 1000+i)
		committed += fmt.Sprintf("BenchmarkLookup/impl=scalable/n=10-2 1 %d ns/op 1 queries/op\n", 500+i*10)
		mine += fmt.Sprintf("BenchmarkLookup/impl=naive/n=10-2 1 %d ns/op 10 queries/op\n", 2000+i)
		mine += fmt.Sprintf("BenchmarkLookup/impl=scalable/n=10-2 1 %d ns/op 1 queries/op\n", 505+i*10)
		mine += fmt.Sprintf("BenchmarkLookup/impl=naive/n=100-2 1 %d ns/op 100 queries/op\n", 20000+i)
	}
	a, err := Parse(strings.NewReader(committed), "committed.bench")
	require.NoError(t, err)
	b, err := Parse(strings.NewReader(mine), "mine.bench")
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, WriteComparison(&out, a, b, "lessons/results/x.bench", "mine/x.bench"))
	text := out.String()
	assert.Contains(t, text, "A: `lessons/results/x.bench`, measured on Committed CPU, go1.26.8.")
	assert.Contains(t, text, "B: `mine/x.bench`, measured on My Laptop, go1.26.9.")
	assert.NotContains(t, text, "pgtest")
	assert.Contains(t, text, "| n | impl | time/op A | time/op B | B vs A | queries/op A | queries/op B |")
	assert.Contains(t, text, "| 10 | naive | 1.00 µs (1.00–1.01 µs) | 2.00 µs (2.00–2.01 µs) | 2.0× slower | 10 | 10 |")
	assert.Contains(t, text, "| 10 | scalable | 525 ns (500–550 ns) | 530 ns (505–555 ns) | no clear difference | 1 | 1 |")
	assert.Contains(t, text, "| 100 | naive |  | 20.0 µs |  |  | 100 |")
	assert.Contains(t, text, "B: Time per op grows as naive ≈ n^1.00")
}

func TestTheChartsSubtitleFitsALongCPUName(t *testing.T) {
	for name, want := range map[string]string{
		"Intel(R) Core(TM) i7-10510U CPU @ 1.80GHz":      "Intel Core i7-10510U",
		"AMD Ryzen 7 PRO 4750U with Radeon Graphics":     "AMD Ryzen 7 PRO 4750U",
		"AMD EPYC 7B13 64-Core Processor":                "AMD EPYC 7B13",
		"11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz": "11th Gen Intel Core i7-1185G7",
		"Apple M2": "Apple M2",
		"A very long CPU name that no rule here shortens at all, really": "A very long CPU name that no rule here …",
	} {
		assert.Equal(t, want, shortCPU(name), name)
	}
	run := "cpu: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\ngo: go1.26.8\npostgres: 15.20 (Debian 15.20-0+deb12u1)\nrtt-measured: 0.022ms\ndate: 2026-11-28\n" +
		"BenchmarkX/impl=naive/n=1-2 1 100 ns/op\nBenchmarkX/impl=naive/n=10-2 1 1000 ns/op\n"
	r, err := Parse(strings.NewReader(run), "long.txt")
	require.NoError(t, err)
	machine := r.Machine()
	for _, line := range strings.Split(machine, "\n") {
		assert.LessOrEqual(t, len([]rune(line)), machineWidth, line)
	}
	for _, want := range []string{"Intel Xeon Platinum 8375C", "go1.26.8", "PostgreSQL 15.20", "round trip 0.022ms", "2026-11-28"} {
		assert.Contains(t, machine, want)
	}
}

func TestASizeOfZeroIsTabledNotCharted(t *testing.T) {
	run := "BenchmarkRead/impl=naive/lag-ms=0-2 1 100 ns/op\nBenchmarkRead/impl=naive/lag-ms=10-2 1 900 ns/op\n"
	r, err := Parse(strings.NewReader(run), "lags.txt")
	require.NoError(t, err)
	b := r.Find("Read")
	assert.Equal(t, []float64{0, 10}, b.Sizes)
	assert.False(t, b.Grows(), "0 has no place on a log axis")
}

func TestSpreadIsTheRangeOfTheRuns(t *testing.T) {
	b := &Benchmark{samples: map[sample][]float64{
		{"naive", 0, timeUnit}:     {2.39, 2.31, 2.52, 2.4},
		{"naive", 0, "queries/op"}: {100, 100},
		{"fast", 0, timeUnit}:      {0.00098, 0.0012, 0.0011},
	}}
	lo, hi, ok := b.Spread("naive", 0, timeUnit)
	require.True(t, ok)
	assert.Equal(t, []float64{2.31, 2.52}, []float64{lo, hi})
	_, _, ok = b.Spread("missing", 0, timeUnit)
	assert.False(t, ok)
	assert.Equal(t, "2.40 s (2.31–2.52 s)", b.FormatMedian("naive", 0, timeUnit))
	assert.Equal(t, "100", b.FormatMedian("naive", 0, "queries/op"), "a count that did not vary has no range")
	assert.Equal(t, "1.10 ms (980 µs–1.20 ms)", b.FormatMedian("fast", 0, timeUnit), "ends in different units say each")
	assert.Equal(t, "", b.FormatMedian("missing", 0, timeUnit))
	assert.True(t, Overlap([]float64{1, 3}, []float64{3, 4}), "a shared end overlaps")
	assert.False(t, Overlap([]float64{1, 2.9}, []float64{3, 4}))
	assert.False(t, Overlap(nil, []float64{3, 4}))
}
