package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/report"
)

// TestPublishedRatiosAreClear fails when a ratio the lessons, the README or
// the results' tables publish compares two versions whose runs' ranges
// overlap in the committed results: such a ratio is noise, and the page must
// say "no clear difference" instead. It reads what is published, not what
// the code would print, so a table typed by hand or results measured anew
// without running go run ./cmd/lessons fail it too.
func TestPublishedRatiosAreClear(t *testing.T) {
	root := "../.."
	cache := make(map[string]*report.Report)
	checked := 0
	clear := func(where, file string, b *report.Benchmark, a, c string, size float64, unit string) {
		t.Helper()
		s1, s2 := b.Samples(a, size, unit), b.Samples(c, size, unit)
		require.NotEmpty(t, s1, "%s: %s has no %s of %s at %v", where, file, unit, a, size)
		require.NotEmpty(t, s2, "%s: %s has no %s of %s at %v", where, file, unit, c, size)
		assert.False(t, report.Overlap(s1, s2), "%s: a ratio of %s to %s in %s at %s=%v, whose ranges overlap in %s: %v against %v",
			where, a, c, unit, b.SizeKey, size, file, s1, s2)
		checked++
	}

	// Figures quoted in prose.
	pages, err := filepath.Glob(filepath.Join(root, "lessons", "*.md"))
	require.NoError(t, err)
	pages = append(pages, filepath.Join(root, "README.md"))
	for _, page := range pages {
		text, err := os.ReadFile(page)
		require.NoError(t, err)
		for _, m := range figureMarker.FindAllStringSubmatch(string(text), -1) {
			if !strings.Contains(m[2], "×") {
				continue
			}
			args := strings.Fields(m[1])
			r, err := parsedResults(root, args[0], cache)
			require.NoError(t, err, m[1])
			b := r.Find(args[1])
			require.NotNil(t, b, m[1])
			var impl, vs, unit string
			var size float64
			for _, arg := range args[2:] {
				key, value, ok := strings.Cut(arg, "=")
				switch {
				case !ok:
					unit = arg
				case key == "impl":
					impl = value
				case key == "vs":
					vs = value
				default:
					size, err = sizeOf(b, value)
					require.NoError(t, err, m[1])
				}
			}
			require.NotEmpty(t, vs, "%s: a ratio from a figure with no vs=: %s", page, m[1])
			clear(page, args[0], b, impl, vs, size, unit)
		}
	}

	// The results' tables: the "vs BASELINE" column of time.
	tables, err := filepath.Glob(filepath.Join(root, resultsDir, "*.md"))
	require.NoError(t, err)
	for _, table := range tables {
		bench := strings.TrimSuffix(table, ".md") + ".bench"
		if _, err := os.Stat(bench); err != nil {
			continue // not a table of a results file (headline.md, 17-drill.md)
		}
		r, err := readReport(bench)
		require.NoError(t, err)
		f, err := os.Open(table)
		require.NoError(t, err)
		var b *report.Benchmark
		var header []string
		lines := bufio.NewScanner(f)
		for lines.Scan() {
			line := lines.Text()
			switch {
			case strings.HasPrefix(line, "**") && strings.HasSuffix(line, "**"):
				b = r.Find(strings.Trim(line, "*"))
				require.NotNil(t, b, "%s: a table of %s, which %s has not", table, line, bench)
				header = nil
			case strings.HasPrefix(line, "|---"):
			case strings.HasPrefix(line, "| ") && header == nil:
				header = cells(line)
			case strings.HasPrefix(line, "| ") && b != nil:
				row := cells(line)
				var impl string
				var size float64
				for i, name := range header {
					switch {
					case name == "impl":
						impl = row[i]
					case name == b.SizeKey:
						size, err = strconv.ParseFloat(strings.ReplaceAll(row[i], ",", ""), 64)
						require.NoError(t, err, "%s: %s", table, line)
					}
				}
				for i, name := range header {
					if baseline, ok := strings.CutPrefix(name, "vs "); ok && strings.Contains(row[i], "×") {
						clear(table, bench, b, baseline, impl, size, "sec/op")
					}
				}
			}
		}
		require.NoError(t, lines.Err())
		require.NoError(t, f.Close())
	}

	// The README's headline table, as committed.
	headlineText, err := os.ReadFile(filepath.Join(root, resultsDir, "headline.md"))
	require.NoError(t, err)
	for _, h := range headlines {
		var row []string
		for line := range strings.Lines(string(headlineText)) {
			if strings.HasPrefix(line, "| ["+h.lesson+"]") {
				row = cells(strings.TrimSpace(line))
			}
		}
		require.NotNil(t, row, "headline.md has no row for %s", h.lesson)
		r, err := readReport(filepath.Join(root, resultsDir, h.results+".bench"))
		require.NoError(t, err)
		b := r.Find(h.benchmark)
		works, scales := b.Impls[0], b.Impls[len(b.Impls)-1]
		if h.works != "" {
			works, scales = h.works, h.scales
		}
		units := strings.Split(h.unit, "+")
		ratios := strings.Split(row[4], "; ")
		require.Len(t, ratios, len(units), "%s: a ratio per unit", h.lesson)
		for i, unit := range units {
			if _, noted := inPlaceOfRatio[h.results+" "+h.benchmark+" "+unit]; strings.Contains(ratios[i], "×") && !noted {
				clear("headline.md "+h.lesson, h.results, b, works, scales, b.Sizes[len(b.Sizes)-1], unit)
			}
		}
	}
	assert.Greater(t, checked, 50, "the published ratios were found")
}

// cells splits a markdown table's row into its cells.
func cells(line string) []string {
	parts := strings.Split(strings.Trim(line, "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// TestCoordinatedOmissionComparesOneThroughput fails when lesson 16's open
// loop was not sent at the rate a closed loop reaches: the lesson compares
// the two at one throughput (the open run measures that rate just before
// it), and an open loop at another rate compares nothing.
func TestCoordinatedOmissionComparesOneThroughput(t *testing.T) {
	r, err := readReport(filepath.Join("../..", resultsDir, "16-overload-omission.bench"))
	require.NoError(t, err)
	b := r.Find("CoordinatedOmission")
	require.NotNil(t, b)
	closed, open := b.Samples("closed", 0, "offered-rps"), b.Samples("open", 0, "offered-rps")
	require.NotEmpty(t, closed)
	require.Len(t, open, len(closed), "an open run for each closed one")
	closedRate, _ := b.Median("closed", 0, "offered-rps")
	openRate, _ := b.Median("open", 0, "offered-rps")
	assert.InEpsilon(t, closedRate, openRate, 0.1, "the open loop offers what a closed loop reaches: %v against %v", open, closed)
}
