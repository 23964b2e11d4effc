package report

import (
	"bytes"
	"flag"
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
