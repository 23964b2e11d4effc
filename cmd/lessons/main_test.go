package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/report"
)

// TestLessonsAreCurrent fails when a lesson's code or results no longer match
// the code and results files they are generated from.
func TestLessonsAreCurrent(t *testing.T) {
	stale, err := refresh("../..", false)
	require.NoError(t, err)
	assert.Empty(t, stale, "run: go run ./cmd/lessons")
}

func TestRenderCopiesTheDeclaration(t *testing.T) {
	root := t.TempDir()
	write(t, root, "pkg/add.go", "package pkg\n\n// Add returns a+b.\nfunc Add(a, b int) int { return a + b }\n\nfunc Sub(a, b int) int { return a - b }\n")
	lesson := "Intro.\n<!-- code: pkg/add.go Add -->\n```go\nstale\n```\n<!-- end -->\nOutro.\n"

	got, err := render(root, lesson, nil)
	require.NoError(t, err)
	assert.Equal(t, "Intro.\n<!-- code: pkg/add.go Add -->\n```go\n// Add returns a+b.\nfunc Add(a, b int) int { return a + b }\n```\n<!-- end -->\nOutro.\n", got)

	again, err := render(root, got, nil)
	require.NoError(t, err)
	assert.Equal(t, got, again, "a current lesson renders to itself")
}

func TestRenderCopiesAMethod(t *testing.T) {
	root := t.TempDir()
	write(t, root, "pkg/c.go", "package pkg\n\ntype C struct{}\n\n// Get gets.\nfunc (c *C) Get() int { return 1 }\n\nfunc Get() int { return 2 }\n")
	got, err := render(root, "<!-- code: pkg/c.go C.Get -->\n<!-- end -->", nil)
	require.NoError(t, err)
	assert.Contains(t, got, "// Get gets.\nfunc (c *C) Get() int { return 1 }")
	assert.NotContains(t, got, "return 2")
}

func TestRenderFailsOnAMissingDeclaration(t *testing.T) {
	root := t.TempDir()
	write(t, root, "pkg/add.go", "package pkg\n\nfunc Add(a, b int) int { return a + b }\n")
	_, err := render(root, "<!-- code: pkg/add.go Mul -->\n<!-- end -->", nil)
	assert.ErrorContains(t, err, "no declaration Mul")
}

func write(t *testing.T, root, path, text string) {
	t.Helper()
	full := filepath.Join(root, path)
	require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(t, os.WriteFile(full, []byte(text), 0o644))
}

// figureResults writes a results file of six runs: naive 1 ms and 10 ms at
// n=10 and 100, scalable about 0.5 ms at both, and "same" within noise of
// naive at n=10.
func figureResults(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	text := "cpu: Test CPU\nrtt-measured: 0.022ms\npgtest: a status line\n"
	for i := range 6 {
		text += fmt.Sprintf("BenchmarkLookup/impl=naive/n=10-2 1 %d ns/op 10 queries/op\n", 1_000_000+i*1000)
		text += fmt.Sprintf("BenchmarkLookup/impl=naive/n=100-2 1 %d ns/op 100 queries/op\n", 10_000_000+i*1000)
		text += fmt.Sprintf("BenchmarkLookup/impl=scalable/n=10-2 1 %d ns/op 1 queries/op\n", 500_000+i*1000)
		text += fmt.Sprintf("BenchmarkLookup/impl=scalable/n=100-2 1 %d ns/op 1 queries/op\n", 500_000+i*1000)
		text += fmt.Sprintf("BenchmarkLookup/impl=same/n=10-2 1 %d ns/op 10 queries/op\n", 1_000_500+i*1000)
	}
	write(t, root, "lessons/results/x.bench", text)
	return root
}

func TestRenderQuotesFiguresFromTheResults(t *testing.T) {
	root := figureResults(t)
	const f = "lessons/results/x.bench Lookup"
	for marker, want := range map[string]string{
		f + " impl=naive n=100 sec/op":                "10.0 ms",
		f + " impl=naive n=100 queries/op":            "100",
		f + " impl=naive vs=scalable n=100 sec/op":    "20×",
		f + " impl=naive vs=scalable n=10 queries/op": "10×",
		f + " impl=naive vs=same n=10 sec/op":         "no clear difference",
		f + " impl=naive growth":                      "n^1.0",
		f + " impl=scalable growth":                   "n^0.0",
		f + " impl=naive n=#2 sec/op":                 "10.0 ms",
		f + " impl=naive n=largest queries/op":        "100",
		f + " n=#1 size":                              "10",
		"lessons/results/x.bench config rtt-measured": "0.022ms",
	} {
		lesson := "Loopback takes <!-- figure: " + marker + " -->typed by hand<!-- end --> here.\n"
		got, err := render(root, lesson, nil)
		require.NoError(t, err, marker)
		assert.Equal(t, "Loopback takes <!-- figure: "+marker+" -->"+want+"<!-- end --> here.\n", got, marker)
		again, err := render(root, got, nil)
		require.NoError(t, err)
		assert.Equal(t, got, again, "a current figure renders to itself")
	}
}

func TestRenderFailsOnAFigureTheResultsDoNotHave(t *testing.T) {
	root := figureResults(t)
	for marker, want := range map[string]string{
		"lessons/results/x.bench Lookup impl=naive n=1000 sec/op":   "no sec/op for impl=naive at n=1000",
		"lessons/results/x.bench Lookup impl=batch n=10 sec/op":     "no sec/op for impl=batch",
		"lessons/results/x.bench Lookup impl=naive sec/op":          "needs its size, n=N",
		"lessons/results/x.bench Lookup impl=naive users=10 sec/op": "no key users",
		"lessons/results/x.bench Search impl=naive n=10 sec/op":     "no benchmark Search",
		"lessons/results/x.bench config pgtest":                     "no configuration line pgtest",
		"lessons/results/y.bench Lookup impl=naive n=10 sec/op":     "no such file",
		"lessons/results/x.bench Lookup impl=naive n=#3 sec/op":     "n=#3: Lookup has 2 sizes",
		"lessons/results/x.bench Lookup impl=naive n=ten sec/op":    "not a number, #N or largest",
		"lessons/results/x.bench Lookup":                            "want a results file",
	} {
		_, err := render(root, "<!-- figure: "+marker+" -->1<!-- end -->", nil)
		assert.ErrorContains(t, err, want, marker)
	}
}

// TestHeadlineShowsWhatChecksPreventAndWhatTheyCost is lesson 8's kind of
// headline: a count that the scales version brings to zero, beside a time
// that does not measurably differ.
func TestHeadlineShowsWhatChecksPreventAndWhatTheyCost(t *testing.T) {
	run := ""
	for i := range 6 {
		run += fmt.Sprintf("BenchmarkPay/impl=naive-2 1 %d ns/op 6 wrong-rows\n", 500_000+i*7000)
		run += fmt.Sprintf("BenchmarkPay/impl=scalable-2 1 %d ns/op 0 wrong-rows\n", 503_000+i*5000)
	}
	r, err := report.Parse(strings.NewReader(run), "pay.bench")
	require.NoError(t, err)
	saved := headlines
	t.Cleanup(func() { headlines = saved })
	headlines = []headline{{"8. Validation", "lessons/08-validation.md", "pay", "Pay", "wrong-rows+sec/op", "", "", false}}
	got, err := headlineTable(map[string]*report.Report{"pay": r})
	require.NoError(t, err)
	assert.Contains(t, string(got), "| [8. Validation](lessons/08-validation.md) | Pay | naive: 6; 518 µs (500–535 µs) | scalable: 0; 516 µs (503–528 µs) | to zero; no clear difference |  | wrong-rows; sec/op, loopback |")

	headlines = []headline{{"8. Validation", "lessons/08-validation.md", "pay", "Pay", "wrong-rows+rows/op", "", "", false}}
	_, err = headlineTable(map[string]*report.Report{"pay": r})
	assert.ErrorContains(t, err, "no rows/op for naive and scalable")
}

// TestHeadlineReadsTheRightWayUpAndNeverDividesByATimeout is lesson 16's
// kind of headline: goodput, of which more is better, reads "N× more", and a
// latency of a version whose requests timed out has no ratio; and lesson 15's:
// a ratio fixed by how the benchmark is built is said to be so.
func TestHeadlineReadsTheRightWayUpAndNeverDividesByATimeout(t *testing.T) {
	run := ""
	for i := range 6 {
		run += fmt.Sprintf("BenchmarkOverload/impl=naive/rate=600-2 1 %d ns/op %d goodput-rps 1002 p99-ms 85 timeouts-%%\n", 900_000_000+i, 44+i%2)
		run += fmt.Sprintf("BenchmarkOverload/impl=scalable/rate=600-2 1 %d ns/op %d goodput-rps 52 p99-ms 0 timeouts-%%\n", 16_000_000+i, 195+i%2)
	}
	r, err := report.Parse(strings.NewReader(run), "overload.bench")
	require.NoError(t, err)
	saved, savedNotes := headlines, inPlaceOfRatio
	t.Cleanup(func() { headlines, inPlaceOfRatio = saved, savedNotes })
	headlines = []headline{{"16. Overload", "lessons/16-overload.md", "overload", "Overload", "goodput-rps+p99-ms+sec/op", "naive", "scalable", true}}
	inPlaceOfRatio = map[string]string{"overload Overload sec/op": "= something, by construction"}
	got, err := headlineTable(map[string]*report.Report{"overload": r})
	require.NoError(t, err)
	assert.Contains(t, string(got), "| 4.39× more; "+report.Capped+"; = something, by construction |")
}

// TestLessonsTypeNoRatioByHand fails when a lesson's prose (or the README's)
// writes a ratio such as "118×" outside a figure marker: such a number drifts
// from the results the day they are measured again.
func TestLessonsTypeNoRatioByHand(t *testing.T) {
	paths, err := filepath.Glob("../../lessons/*.md")
	require.NoError(t, err)
	paths = append(paths, "../../README.md")
	for _, path := range paths {
		text, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Empty(t, ratiosTypedByHand(string(text)), "%s: quote ratios with <!-- figure: … --> (see cmd/lessons)", path)
	}
}

func TestRatiosTypedByHandSkipsWhatIsGenerated(t *testing.T) {
	lesson := "It is 4.8× faster, and 1,349 × faster.\n" +
		"<!-- figure: x.bench B impl=a vs=b sec/op -->12×<!-- end -->\n" +
		"<!-- insert: x.md -->\n| 3× faster |\n<!-- end -->\n" +
		"```sh\necho 5×\n```\n`7×` and ×100 per ×10 and 0.5–2 ms × 10,002.\n"
	assert.Equal(t, []string{"4.8×", "1,349 ×"}, ratiosTypedByHand(lesson))
}
