package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireRaceCall is how a check says it gives no verdict without the race
// detector: its TestExerciseNN calls it first.
var requireRaceCall = regexp.MustCompile(`(?m)^\s*benchkit\.RequireRace\(t\)`)

// A check whose wrong answers include data races says so in two places that
// must agree: its TestExerciseNN (bench/<name>/exercise_test.go) calls
// benchkit.RequireRace, and every command for it in the lesson's Exercise
// section, and in the exercise's package comment, has -race. The lesson's
// command is the one go run ./cmd/workshop check runs with -race.
func TestChecksThatNeedTheRaceDetectorSaySo(t *testing.T) {
	var needRace []int
	for _, e := range mustExercises(t) {
		code, err := os.ReadFile(filepath.Join(root, e.bench(), "exercise_test.go"))
		require.NoError(t, err)
		requires := requireRaceCall.Match(code)
		if requires {
			needRace = append(needRace, e.n)
		}

		d, err := readDoc(filepath.Join(root, e.lesson))
		require.NoError(t, err)
		var checks []string
		for _, b := range d.blocks {
			if !strings.HasPrefix(b.section, "Exercise") {
				continue
			}
			for _, c := range commands(b) {
				if strings.Contains(c, "go test") && strings.Contains(c, "-tags exercise") {
					checks = append(checks, c)
				}
			}
		}
		require.NotEmpty(t, checks, "%s: no command for the check in its Exercise section", e.lesson)
		comments, err := filepath.Glob(filepath.Join(root, e.dir(), "*.go"))
		require.NoError(t, err)
		for _, f := range comments {
			text, err := os.ReadFile(f)
			require.NoError(t, err)
			for line := range strings.Lines(string(text)) {
				if c, ok := strings.CutPrefix(strings.TrimSpace(line), "//\tgo test "); ok && strings.Contains(c, "-tags exercise") {
					checks = append(checks, "go test "+c)
				}
			}
		}
		for _, c := range checks {
			if race := slices.Contains(strings.Fields(c), "-race"); race != requires {
				t.Errorf("lesson %d: exercise_test.go calls benchkit.RequireRace: %v; but this command for its check has -race: %v\n\t%s", e.n, requires, race, c)
			}
		}
	}
	for _, n := range []int{6, 12, 13, 16, 18} { // lessons about requests at once
		require.Contains(t, needRace, n, "lesson %d's check runs under the race detector", n)
	}
	t.Log(fmt.Sprint("checks under -race: ", needRace))
}
