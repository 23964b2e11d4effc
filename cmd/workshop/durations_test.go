package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The trainer's table of durations is made from the lessons' words and the
// measured timings: it goes stale when either changes.
func TestTrainerDurationsAreUpToDate(t *testing.T) {
	want, err := durationsTable(root)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(root, durationsFile))
	require.NoError(t, err)
	require.Equal(t, want, string(got), "%s is stale: run go run ./cmd/workshop durations -w, then go run ./cmd/lessons", durationsFile)
	trainer, err := os.ReadFile(filepath.Join(root, "lessons", "TRAINER.md"))
	require.NoError(t, err)
	require.Contains(t, string(trainer), "<!-- insert: "+durationsFile+" -->", "TRAINER.md shows the table")
}

func TestReadingCountsProseAndCodeButNotGeneratedTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "01-x.md")
	require.NoError(t, os.WriteFile(path, []byte("# 1. X\n\nfour words of prose\n\n```go\nfunc f() {}\n\nreturn\n```\n"+
		"<!-- insert: lessons/results/x.md -->\n| a | table | of | many | words |\n<!-- end -->\ntwo more\n"), 0o644))
	words, code, err := reading(path)
	require.NoError(t, err)
	require.Equal(t, 3+4+2, words) // "# 1. X", the prose, "two more"
	require.Equal(t, 2, code)
}

func TestReadTimingsRefusesWhatIsNotATiming(t *testing.T) {
	for _, text := range []string{
		"lesson\ttests-s\tbenchmarks-s\tcheck-s\n1\t1\t2\t3\n",  // no count
		"count: 0\n1\t1\t2\t3\n",                                // count not positive
		"count: x\n",                                            // count not a number
		"count: 1\n1\t1\t2\n",                                   // a column short
		"count: 1\none\t1\t2\t3\n",                              // lesson not a number
		"count: 1\n1\t-1\t2\t3\n",                               // negative seconds
		"count: 1\n1\tNaN?\t2\t3\n",                             // not seconds
		"count: 1\n1\t" + strings.Repeat("9", 400) + "\t2\t3\n", // huge
	} {
		path := filepath.Join(t.TempDir(), "timings.txt")
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
		_, err := readTimings(path)
		require.Error(t, err, "%q", text)
	}
	_, err := readTimings(filepath.Join(t.TempDir(), "missing.txt"))
	require.ErrorContains(t, err, "go run ./cmd/workshop time")
}

// clock is a fake clock that moves a second every time it is read.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func TestTimeRunsEachLessonsCommandsOnce(t *testing.T) {
	exercises := mustExercises(t)
	r := &fakeRunner{output: "ok\n"}
	w, _ := newWorkshop(t, r)
	c := &clock{t: time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC)}
	w.now = c.now
	out := filepath.Join(t.TempDir(), "timings.txt")
	require.NoError(t, w.main(context.Background(), []string{"time", "-count", "2", "-o", out, "-note", "busy"}))

	var scripts []string
	checks := 0
	for _, cmd := range r.ran {
		switch {
		case cmd[0] == "bash":
			scripts = append(scripts, cmd[2])
		case strings.Contains(strings.Join(cmd, " "), "^TestExercise"):
			checks++
		}
	}
	require.Equal(t, len(exercises), checks, "one check a lesson")
	joined := strings.Join(scripts, "\n")
	require.NotContains(t, joined, "-count 6", "benchmarks run with the -count asked for")
	require.Contains(t, joined, "-bench 'GetUserOrders|ListPosts' -benchmem -count 2 ./bench/nplusone > mine/01-n-plus-one.bench")
	require.NotContains(t, joined, "./cmd/report", "comparing is not timed")
	require.NotContains(t, joined, "-fuzz", "a fuzz run lasts as long as it is told")
	require.NotContains(t, joined, "-tags exercise -run Exercise", "the exercise section is timed as the check")
	for _, s := range scripts {
		require.NotContains(t, s, "lessons/results", "timing the lessons changes no tracked file")
	}

	text, err := os.ReadFile(out)
	require.NoError(t, err)
	ts, err := readTimings(out)
	require.NoError(t, err, "%s", text)
	require.Equal(t, 2, ts.count)
	require.Contains(t, ts.header, "note: busy")
	require.Len(t, ts.lessons, len(exercises))
	require.Equal(t, timing{tests: 1, bench: 1, check: 1}, ts.lessons[1], "lesson 1: a test block, a benchmark block and the check, a second each")
}

func TestDurationsSayWhatWasNotMeasured(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "lessons", "results"), 0o755))
	for _, name := range []string{"00-start-here.md", "01-n-plus-one.md", "02-pagination.md"} {
		text, err := os.ReadFile(filepath.Join(root, "lessons", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "lessons", name), text, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, timingsFile), []byte("count: 2\nlesson\ttests-s\tbenchmarks-s\tcheck-s\tfailed\n1\t30\t120\t10\t\n"), 0o644))
	table, err := durationsTable(dir)
	require.NoError(t, err)
	require.Contains(t, table, "| 30 s | 120 s | 6 min | 10 s |", "lesson 1: -count 6 is three times -count 2")

	lesson8, err := readDoc(filepath.Join(root, "lessons", "08-validation.md"))
	require.NoError(t, err)
	require.Equal(t, 1.0, scale(lesson8, 1), "lesson 8's loop runs six times itself")
	require.Regexp(t, `\[2\. Pagination\].* not measured \| more than \d+ min \|`, table)
	require.Contains(t, table, "| half a day | 0, 1, 2, 5 | more than ")
	require.Contains(t, table, "the commands of 2 were not measured")
}

// durations -w sets the minutes of a lesson's room notes to what time
// measured, and leaves a lesson it did not measure alone.
func TestDurationsWriteTheRoomNotesMinutes(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "lessons", "results"), 0o755))
	originals := map[string]string{}
	for _, name := range []string{"00-start-here.md", "01-n-plus-one.md", "02-pagination.md"} {
		text, err := os.ReadFile(filepath.Join(root, "lessons", name))
		require.NoError(t, err)
		stale := roomMinutes.ReplaceAllString(string(text), "${1}99${2}")
		originals[name] = stale
		require.NoError(t, os.WriteFile(filepath.Join(dir, "lessons", name), []byte(stale), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, timingsFile), []byte("count: 1\nlesson\ttests-s\benchmarks-s\tcheck-s\tfailed\n1\t30\t130\t10\t\n"), 0o644))
	w := &workshop{root: dir, out: io.Discard}
	require.NoError(t, w.durations([]string{"-w"}))

	lesson1, err := os.ReadFile(filepath.Join(dir, "lessons", "01-n-plus-one.md"))
	require.NoError(t, err)
	require.Contains(t, string(lesson1), "In a room: `-count 1`, about 3 min of benchmarks", "130 s measured: 3 minutes")
	require.NotContains(t, string(lesson1), "about 99 min")
	lesson2, err := os.ReadFile(filepath.Join(dir, "lessons", "02-pagination.md"))
	require.NoError(t, err)
	require.Equal(t, originals["02-pagination.md"], string(lesson2), "lesson 2 was not measured: its notes stay")
}

// cmd/load's runs are measurements, and its -count=N is a count as go test's -count N is.
func TestTimeKnowsTheLoadToolsCommands(t *testing.T) {
	script := "go run ./cmd/load -impl=naive,scalable -rates=100 -duration=2s -count=6 -o mine/17.bench"
	require.True(t, measures(script))
	require.False(t, measures("go test -run 'Shopd' -v ./bench"))
	require.Equal(t, "go run ./cmd/load -impl=naive,scalable -rates=100 -duration=2s -count 1 -o mine/17.bench",
		countFlag.ReplaceAllString(script, "-count 1"))
}

func TestTimeOnlySomeLessonsKeepsTheOthersRows(t *testing.T) {
	r := &fakeRunner{output: "ok\n"}
	w, _ := newWorkshop(t, r)
	w.now = (&clock{t: time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)}).now
	out := filepath.Join(t.TempDir(), "timings.txt")
	before := "cpus: 2\ndate: 2026-11-29\ncount: 1\nnote: quiet\nlesson\ttests-s\tbenchmarks-s\tcheck-s\tfailed\n1\t5.9\t58.4\t2.1\t\n2\t2.8\t60.1\t1.9\t\n"
	require.NoError(t, os.WriteFile(out, []byte(before), 0o644))
	require.NoError(t, w.main(context.Background(), []string{"time", "-lessons", "2,5", "-o", out, "-note", "busy"}))

	ts, err := readTimings(out)
	require.NoError(t, err)
	require.Equal(t, timing{tests: 5.9, bench: 58.4, check: 2.1}, ts.lessons[1], "lesson 1 was not timed again")
	require.Equal(t, 1.0, ts.lessons[2].check, "lesson 2 was timed again: its check, a second")
	require.Contains(t, ts.lessons, 5)
	require.Len(t, ts.lessons, 3)
	require.Contains(t, ts.header, "note: quiet")
	require.Contains(t, ts.header, "lessons 2, 5: timed again on 2026-12-01, cpus "+strconv.Itoa(runtime.NumCPU())+", busy")

	require.ErrorContains(t, w.main(context.Background(), []string{"time", "-lessons", "2", "-count", "3", "-o", out}), "-count 1")
	require.ErrorContains(t, w.main(context.Background(), []string{"time", "-lessons", "two", "-o", out}), "lessons' numbers")
}

// count6 is the -count of a lesson's own benchmark commands.
var count6 = regexp.MustCompile(`-count[ =]6\b`)

// TestEachBenchmarkCommandSaysTheRoomsCount: after every block of a lesson
// whose commands say -count 6 (or -count=6) comes the room's one-line note, "In a room:
// `-count 1`", and for a block time measures, the minutes the trainer's table
// gives the lesson's benchmarks at -count 1, so the two never drift.
func TestEachBenchmarkCommandSaysTheRoomsCount(t *testing.T) {
	const root = "../.."
	ts, err := readTimings(filepath.Join(root, timingsFile))
	require.NoError(t, err)
	docs, err := lessonDocs(root)
	require.NoError(t, err)
	notes := 0
	for _, d := range docs {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(d.path), "-", 2)[0])
		require.NoError(t, err, d.path)
		text, err := os.ReadFile(d.path)
		require.NoError(t, err)
		lines := strings.Split(string(trimCR(text)), "\n")
		for _, b := range d.blocks {
			if !count6.MatchString(b.text) {
				continue
			}
			end := b.line // the line after the opening fence, from 0
			for !strings.HasPrefix(lines[end], "```") {
				end++
			}
			next := end + 1
			for next < len(lines) && strings.TrimSpace(lines[next]) == "" {
				next++
			}
			require.Less(t, next, len(lines), "%s:%d: nothing after the block", d.path, end+1)
			note := lines[next]
			require.True(t, strings.HasPrefix(note, "In a room: `-count 1`"), "%s:%d: the block's room note, got %q", d.path, next+1, note)
			timed, ok := ts.lessons[n]
			if ok && inMeasure(d, b.section) && measures(b.text) {
				require.Contains(t, note, fmt.Sprintf(", about %d min of benchmarks", minutes(timed.bench)), "%s:%d: the trainer's table's minutes", d.path, next+1)
			} else {
				require.NotContains(t, note, "min of benchmarks", "%s:%d: a block time does not measure has no figure", d.path, next+1)
			}
			notes++
		}
	}
	require.Positive(t, notes)
}
