package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/report"
)

func TestANonBenchmarkFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.md")
	require.NoError(t, os.WriteFile(path, []byte("# not a benchmark\n"), 0o644))
	assert.ErrorIs(t, reportFile(path, ""), report.ErrNoResults)
	var out strings.Builder
	assert.ErrorIs(t, compareFiles(&out, "../../lessons/results/01-n-plus-one.bench", path), report.ErrNoResults)
	assert.Empty(t, out.String())
}

// TestCompareTheCommittedResultsWithATraineesRun uses the interface the
// lessons give trainees: the committed file first, their own second.
func TestCompareTheCommittedResultsWithATraineesRun(t *testing.T) {
	var out strings.Builder
	require.NoError(t, compareFiles(&out, "../../lessons/results/01-n-plus-one.bench", "../../lessons/results/01-n-plus-one-rtt1ms.bench"))
	text := out.String()
	assert.Contains(t, text, "A: `../../lessons/results/01-n-plus-one.bench`, measured on ")
	assert.Contains(t, text, "B: `../../lessons/results/01-n-plus-one-rtt1ms.bench`, measured on ")
	assert.Contains(t, text, "(added: 1ms)")
	assert.Contains(t, text, "**GetUserOrders**")
	assert.Contains(t, text, "| 10,000 | naive |")
}
