package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// fakeRunner answers every command with the same output and error, and keeps
// the commands it was asked to run.
type fakeRunner struct {
	output string
	err    error
	ran    [][]string
}

func (f *fakeRunner) run(_ context.Context, _ string, name string, args ...string) ([]byte, error) {
	f.ran = append(f.ran, append([]string{name}, args...))
	return []byte(f.output), f.err
}

// newWorkshop returns a workshop on this repository whose progress is kept in
// a temporary file, and what it prints.
func newWorkshop(t *testing.T, r runner) (*workshop, *strings.Builder) {
	t.Helper()
	out := &strings.Builder{}
	return &workshop{
		root:  root,
		state: filepath.Join(t.TempDir(), "progress.txt"),
		out:   out,
		run:   r,
		now:   func() time.Time { return time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC) },
	}, out
}

// exitStatus1 stands for go test's exit status when a test fails.
var exitStatus1 = errors.New("exit status 1")

const (
	passed = `=== RUN   TestExercise01
    exercise_test.go:30: round trips: 2, was 151 with the naive version
--- PASS: TestExercise01 (0.52s)
PASS
ok  	works-vs-scales/bench/nplusone	1.204s
`
	failed = `=== RUN   TestExercise01
    exercise_test.go:30: 
        	Error Trace:	/repo/bench/nplusone/exercise_test.go:30
        	Error:      	Received unexpected error:
        	            	exercise 1: 31 round trips for one page: want at most 2
        	Test:       	TestExercise01
--- FAIL: TestExercise01 (0.61s)
FAIL
FAIL	works-vs-scales/bench/nplusone	1.530s
FAIL
`
	noDatabase = `=== RUN   TestExercise01
    exercise_test.go:30: pgtest: no PostgreSQL available: WORKSHOP_DATABASE_URL is not set and no container could be started (Cannot connect to the Docker daemon)
--- FAIL: TestExercise01 (0.01s)
FAIL
`
	noBuild = `# works-vs-scales/exercises/nplusone
exercises/nplusone/comments.go:21:9: undefined: posts
FAIL	works-vs-scales/bench/nplusone [build failed]
FAIL
`
)

func TestListBeforeAnyCheck(t *testing.T) {
	exercises := mustExercises(t)
	w, out := newWorkshop(t, &fakeRunner{})
	require.NoError(t, w.main(context.Background(), nil))
	text := out.String()
	require.Equal(t, len(exercises), strings.Count(text, "  not yet "), text)
	require.NotContains(t, text, "solved ", "nothing was checked yet")
	require.Contains(t, text, "1. N+1 queries")
	require.Contains(t, text, "11. Bulkheads")
	require.Contains(t, text, "exercises/nestedloops/")
	require.Contains(t, text, "pure Go: needs no database")
	needDB := 0
	for _, e := range exercises {
		if e.needsDB {
			needDB++
		}
	}
	require.Equal(t, needDB, strings.Count(text, "needs PostgreSQL"))
	require.Contains(t, text, fmt.Sprintf("0 of %d solved.", len(exercises)))
	require.Contains(t, text, "Next: 1. N+1 queries. Read lessons/01-n-plus-one.md, change exercises/nplusone/")
	require.Contains(t, text, "go run ./cmd/workshop check 1\n")
}

func TestCheckSolvedShowsWhatTheCheckMeasured(t *testing.T) {
	exercises := mustExercises(t)
	r := &fakeRunner{output: passed}
	w, out := newWorkshop(t, r)
	require.NoError(t, w.main(context.Background(), []string{"check", "1"}))
	require.Equal(t, [][]string{{"go", "test", "-tags", "exercise", "-count", "1", "-v", "-run", "^TestExercise01$", "./bench/nplusone"}}, r.ran)
	text := out.String()
	require.Contains(t, text, "Solved: 1. N+1 queries.")
	require.Contains(t, text, "What the check measured:\n  round trips: 2, was 151 with the naive version\n")
	require.Contains(t, text, "Next: 2. Pagination.")

	out.Reset()
	require.NoError(t, w.main(context.Background(), []string{"list"}))
	require.Contains(t, out.String(), "  solved   1. N+1 queries ")
	require.Contains(t, out.String(), fmt.Sprintf("1 of %d solved.", len(exercises)))
}

func TestCheckSolvedWithoutFiguresQuotesTheLesson(t *testing.T) {
	w, out := newWorkshop(t, &fakeRunner{output: strings.Replace(passed, "    exercise_test.go:30: round trips: 2, was 151 with the naive version\n", "", 1)})
	require.NoError(t, w.main(context.Background(), []string{"check", "01"}))
	require.Contains(t, out.String(), "compares your feed with the naive one, post by post, and counts your round trips")
}

func TestCheckNotYetSaysWhatIsWrong(t *testing.T) {
	exercises := mustExercises(t)
	w, out := newWorkshop(t, &fakeRunner{output: passed})
	require.NoError(t, w.main(context.Background(), []string{"check", "1"}))
	w.run = &fakeRunner{output: failed, err: exitStatus1}
	out.Reset()
	err := w.main(context.Background(), []string{"check", "1"})
	require.ErrorIs(t, err, errNotSolved)
	text := out.String()
	require.Contains(t, text, "Not yet: 1. N+1 queries. What the check found:")
	require.Contains(t, text, "exercise 1: 31 round trips for one page: want at most 2")
	require.NotContains(t, text, "Error Trace", "the framework's bookkeeping stays out")
	require.Contains(t, text, "Stuck? go run ./cmd/workshop hint 1")

	out.Reset()
	require.NoError(t, w.main(context.Background(), []string{"list"}))
	require.Contains(t, out.String(), fmt.Sprintf("0 of %d solved.", len(exercises)), "a check that fails again takes the exercise back to not yet")
}

func TestCheckWithoutADatabaseSaysWhatIsMissing(t *testing.T) {
	w, out := newWorkshop(t, &fakeRunner{output: noDatabase, err: exitStatus1})
	require.ErrorIs(t, w.main(context.Background(), []string{"check", "1"}), errNotSolved)
	require.Contains(t, out.String(), "Not checked: exercise 1 needs PostgreSQL, and none was found.")
	require.Contains(t, out.String(), "WORKSHOP_DATABASE_URL")
	_, err := os.Stat(w.statePath())
	require.ErrorIs(t, err, os.ErrNotExist, "a check that could not run records nothing")
}

func TestCheckThatDoesNotCompileShowsTheCompiler(t *testing.T) {
	w, out := newWorkshop(t, &fakeRunner{output: noBuild, err: exitStatus1})
	require.ErrorIs(t, w.main(context.Background(), []string{"check", "1"}), errNotSolved)
	require.Contains(t, out.String(), "Not yet: the code does not compile.")
	require.Contains(t, out.String(), "exercises/nplusone/comments.go:21:9: undefined: posts")
}

func TestCheckOfAMissingTest(t *testing.T) {
	w, out := newWorkshop(t, &fakeRunner{output: "testing: warning: no tests to run\nPASS\n"})
	require.ErrorIs(t, w.main(context.Background(), []string{"check", "3"}), errNotSolved)
	require.Contains(t, out.String(), "Not checked: go test ran no check named TestExercise03.")
}

func TestHintsComeInStagesAndNeverGiveTheAnswer(t *testing.T) {
	exercises := mustExercises(t)
	for _, e := range exercises {
		w, out := newWorkshop(t, &fakeRunner{})
		n := []string{"hint", itoa(e.n)}
		require.NoError(t, w.main(context.Background(), n))
		first := out.String()
		require.Contains(t, first, "what the lesson says", e.lesson)
		require.Contains(t, first, "The exercise:", e.lesson)
		require.Contains(t, first, "go run ./cmd/workshop hint "+itoa(e.n)+" 2")
		out.Reset()
		require.NoError(t, w.main(context.Background(), append(n, "2")))
		second := out.String()
		require.Contains(t, second, "a nudge", e.lesson)
		for _, text := range []string{first, second} {
			for _, markup := range []string{"<!--", "-->", "**", "](", "```", "`"} {
				require.NotContains(t, text, markup, "a hint is prose, never markup: %s\n%s", e.lesson, text)
			}
			require.NotContains(t, text, "One answer is", e.lesson)
			require.NotContains(t, text, "scalable/"+e.name+"/", "a hint points at no answer: %s", e.lesson)
		}
	}
}

func TestHostileCommandLines(t *testing.T) {
	exercises := mustExercises(t)
	for _, args := range [][]string{
		{"check"}, {"check", "0"}, {"check", itoa(exercises[len(exercises)-1].n + 1)}, {"check", "-1"}, {"check", "abc"},
		{"check", "99999999999999999999999"}, {"hint", "1", "0"}, {"hint", "1", "3"}, {"hint", "x"},
		{"nope"}, {"hint", "1", "-2"},
	} {
		r := &fakeRunner{}
		w, _ := newWorkshop(t, r)
		require.Error(t, w.main(context.Background(), args), "%q", args)
		require.Empty(t, r.ran, "%q ran a command", args)
	}
}

func TestAProgressFileATraineeEditedIsRead(t *testing.T) {
	exercises := mustExercises(t)
	w, out := newWorkshop(t, &fakeRunner{})
	hash := filesHash(filepath.Join(root, exercises[1].dir()))
	require.NoError(t, os.WriteFile(w.statePath(), []byte("# mine\n02 solved "+hash+"\nxx solved\n05\n\n03 not-yet\n04 solved\n"), 0o644))
	require.NoError(t, w.main(context.Background(), []string{"next"}))
	require.Contains(t, out.String(), "Next: 3. Indexes.", "the first not solved after the last solved")
	out.Reset()
	require.NoError(t, w.main(context.Background(), nil))
	require.Contains(t, out.String(), fmt.Sprintf("1 of %d solved.", len(exercises)))
	require.Contains(t, out.String(), "  stale    4. Streaming", "a verdict with no hash of its files is stale")
}

func TestEverythingSolvedPointsAtTheChecklist(t *testing.T) {
	exercises := mustExercises(t)
	w, out := newWorkshop(t, &fakeRunner{})
	writeSolved(t, w, exercises)
	require.NoError(t, w.main(context.Background(), []string{"next"}))
	require.Contains(t, out.String(), "lessons/99-checklist.md")
	_, err := os.Stat(filepath.Join(root, "lessons", "99-checklist.md"))
	require.NoError(t, err, "the page next points at exists")
}

func TestTemplatePrintsTheHarnessNames(t *testing.T) {
	w, out := newWorkshop(t, &fakeRunner{})
	require.NoError(t, w.main(context.Background(), []string{"template"}))
	require.Contains(t, out.String(), "\n  "+pgtest.TemplateName(shop.Small)+"\n", "the name the harness gives the template")
	require.Contains(t, out.String(), "createdb -T "+pgtest.TemplateName(shop.Small)+" shop")
	require.Contains(t, out.String(), "psql -l | grep _tpl_")
}

func TestExercisesMatchTheRepository(t *testing.T) {
	exercises := mustExercises(t)
	require.Len(t, exercises, 20, "lessons 1 to 20 have an exercise")
	var pureGo []int
	for i, e := range exercises {
		require.Equal(t, i+1, e.n, "exercises in lesson order, none missing")
		for _, p := range []string{e.lesson, e.dir(), e.bench() + "/exercise_test.go", e.bench() + "/exercise_check_test.go"} {
			_, err := os.Stat(filepath.Join(root, p))
			require.NoError(t, err, "exercise %d", e.n)
		}
		d, err := readDoc(filepath.Join(root, e.lesson))
		require.NoError(t, err)
		_, ok := d.section("Exercise")
		require.True(t, ok, "%s has an Exercise section", e.lesson)
		require.True(t, strings.HasPrefix(d.shortTitle(), itoa(e.n)+". "), d.title)
		require.NotEmpty(t, e.nudge, "%s has a nudge comment for hint 2", e.lesson)
		if !e.needsDB {
			pureGo = append(pureGo, e.n)
		}
	}
	require.Equal(t, []int{5, 16}, pureGo, "the checks that need no database")
}

// TestEveryFolderIsNamedAfterALesson: each folder of naive/, scalable/,
// exercises/ and bench/ carries the name of a lesson (its file's slug without
// hyphens), so lesson N maps to its code without a table; bench/ also holds
// the shared benchkit and the harness's own tests.
func TestEveryFolderIsNamedAfterALesson(t *testing.T) {
	names := map[string]bool{"benchkit": true, "harness": true}
	paths, err := filepath.Glob(filepath.Join(root, "lessons", "[0-9][0-9]-*.md"))
	require.NoError(t, err)
	for _, p := range paths {
		if m := lessonFile.FindStringSubmatch(filepath.Base(p)); m != nil {
			names[strings.ReplaceAll(m[2], "-", "")] = true
		}
	}
	for _, side := range []string{"naive", "scalable", "exercises", "bench"} {
		entries, err := os.ReadDir(filepath.Join(root, side))
		require.NoError(t, err)
		for _, entry := range entries {
			if entry.IsDir() {
				assert.True(t, names[entry.Name()], "%s/%s is named after no lesson", side, entry.Name())
			}
		}
	}
}

// TestExercisesAreFoundByTheirNames: a new lesson needs no table: its file
// and its folders are enough.
func TestExercisesAreFoundByTheirNames(t *testing.T) {
	dir := t.TempDir()
	write := func(path, text string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, path), []byte(text), 0o644))
	}
	write("lessons/00-start-here.md", "# 0. Start here\n")
	write("lessons/19-partitions.md", "# 19. Partitions: one table, or many\n\n## Exercise\n\nDo it.\n\n```sh\ngo test -race -tags exercise -run Exercise19 ./bench/partitions\n```\n\n<!-- nudge: Look at\nthe plan. -->\n")
	write("lessons/20-migrations.md", "# 20. Migrations\n")
	write("lessons/99-checklist.md", "# The checklist\n")
	write("exercises/partitions/p.go", "package partitions\n")
	write("bench/partitions/exercise_test.go", "//go:build exercise\n\npackage partitions\n")
	write("bench/partitions/exercise_check_test.go", "package partitions\n\nvar db = pgtest.Shop\n")
	found, err := findExercises(dir)
	require.NoError(t, err)
	require.Equal(t, []exercise{{n: 19, lesson: "lessons/19-partitions.md", name: "partitions", needsDB: true, race: true, nudge: "Look at the plan."}}, found,
		"lesson 20 has no exercises/migrations yet")
	require.Equal(t, []string{"test", "-tags", "exercise", "-race", "-count", "1", "-v", "-run", "^TestExercise19$", "./bench/partitions"}, checkArgs(found[0]),
		"the lesson's command for the check has -race, so workshop check runs it with -race")
}

// writeSolved writes a progress file in which every exercise of exercises is
// solved, with the hash of its files as they are.
func writeSolved(t *testing.T, w *workshop, exercises []exercise) {
	t.Helper()
	var b strings.Builder
	for _, e := range exercises {
		fmt.Fprintf(&b, "%02d solved %s 2026-11-29T12:00:00Z\n", e.n, filesHash(filepath.Join(w.root, e.dir())))
	}
	require.NoError(t, os.WriteFile(w.statePath(), []byte(b.String()), 0o644))
}

func itoa(n int) string { return strconv.Itoa(n) }

// mustExercises returns the exercises found in this repository.
func mustExercises(t *testing.T) []exercise {
	t.Helper()
	found, err := findExercises(root)
	require.NoError(t, err)
	return found
}

// TestABrokenExerciseBlocksOnlyItsOwnCheck: exercise 3 that does not compile
// fails its own check, which says so with the compiler's words, and exercise
// 5's check still runs and gives its verdict: each check builds its lesson's
// test package alone. The broken file is given to go as an overlay
// (GOFLAGS=-overlay), so the tree is not touched; the checks run as a
// trainee's do, through go test.
func TestABrokenExerciseBlocksOnlyItsOwnCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two lessons' test packages; skipped with -short")
	}
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.go")
	require.NoError(t, os.WriteFile(broken, []byte("package indexes\n\nvar broken int = \"half edited\"\n"), 0o644))
	target, err := filepath.Abs(filepath.Join(root, "exercises", "indexes", "broken.go"))
	require.NoError(t, err)
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {target: broken}})
	require.NoError(t, err)
	overlayFile := filepath.Join(dir, "overlay.json")
	require.NoError(t, os.WriteFile(overlayFile, overlay, 0o644))
	t.Setenv("GOFLAGS", "-overlay="+overlayFile)

	w, out := newWorkshop(t, execRunner{})
	require.ErrorIs(t, w.main(context.Background(), []string{"check", "3"}), errNotSolved)
	require.Contains(t, out.String(), "Not yet: the code does not compile.", out.String())
	require.Contains(t, out.String(), "# works-vs-scales/exercises/indexes", "the compiler names the broken package")

	out.Reset()
	err = w.main(context.Background(), []string{"check", "5"})
	text := out.String()
	require.NotContains(t, text, "does not compile", "exercise 3 is not in exercise 5's way:\n%s", text)
	require.NotContains(t, text, "Not checked", text)
	if err != nil { // unsolved, as the tree has it; a trainee's answer passes
		require.ErrorIs(t, err, errNotSolved)
		require.Contains(t, text, "Not yet: 5. Nested loops. What the check found:", text)
	} else {
		require.Contains(t, text, "Solved: 5. Nested loops.", text)
	}
}

// TestACheckThatWaitsSaysSoAtOnce: of what a check prints, the harness's
// word that it waits (for the room's turn) is shown as soon as its line is
// whole, however the output is cut; nothing else is.
func TestACheckThatWaitsSaysSoAtOnce(t *testing.T) {
	var live bytes.Buffer
	echo := &lineEcho{w: &live}
	waits := "pgtest: TestExercise20 needs a pool of 20 connections: waiting for another trainee's large check to end (1 waiting before this one)"
	for _, chunk := range []string{"=== RUN   TestExercise20\npgtest: seeding wvs_x (once per server)...\n", waits[:30], waits[30:], "\n    exercise_check_test.go:12: not yet\n"} {
		_, err := echo.Write([]byte(chunk))
		require.NoError(t, err)
		if chunk == waits[30:] {
			require.Empty(t, live.String(), "not before its line is whole")
		}
	}
	require.Equal(t, waits+"\n", live.String())
}
