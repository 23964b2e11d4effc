// Workshop shows a trainee where they are in the workshop, as rustlings does:
// which exercises are solved, what to do next, a check with a verdict in the
// lesson's words, and hints in stages that never give the answer.
//
// Usage, from the repository's root:
//
//	go run ./cmd/workshop            # every lesson's exercise: solved or not yet
//	go run ./cmd/workshop check N    # run exercise N's check, and say what it found
//	go run ./cmd/workshop next       # the first exercise not yet solved
//	go run ./cmd/workshop hint N     # what the lesson says; hint N 2 gives a nudge
//	go run ./cmd/workshop watch      # check the next exercise again each time you save it
//	go run ./cmd/workshop template   # the names of the seeded template databases
//	go run ./cmd/workshop durations  # the trainer's table of durations
//	go run ./cmd/workshop time       # time every lesson's commands (maintainer)
//
// The exercises are found in the tree: lessons/NN-slug.md, and the folders
// named after the slug without hyphens (exercises/nplusone, bench/nplusone).
// A check runs go test -tags exercise -run '^TestExerciseNN$' ./bench/<name>,
// its lesson's test package alone. What
// it found is kept in mine/progress.txt, which git ignores, so following the
// workshop changes no tracked file.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

func main() {
	w := &workshop{root: ".", state: progressFile, out: os.Stdout, run: execRunner{}, now: time.Now}
	if err := w.main(context.Background(), os.Args[1:]); err != nil {
		if !errors.Is(err, errNotSolved) { // the verdict is printed already
			fmt.Fprintln(os.Stderr, "workshop:", err)
		}
		os.Exit(1)
	}
}

// A runner runs a command in dir and returns what it printed, stdout and
// stderr together, and an error when it did not exit 0.
type runner interface {
	run(ctx context.Context, dir string, name string, args ...string) ([]byte, error)
}

// execRunner runs commands as child processes.
type execRunner struct{}

func (execRunner) run(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// A workshop is the command's state: the repository it works on, where it
// prints and how it runs the checks.
type workshop struct {
	root  string // the repository
	state string // the progress file, from root unless absolute
	out   io.Writer
	run   runner
	now   func() time.Time
	found []exercise // the exercises, once found in the tree
}

// statePath returns where the progress file is.
func (w *workshop) statePath() string {
	if filepath.IsAbs(w.state) {
		return w.state
	}
	return filepath.Join(w.root, w.state)
}

// errUsage is returned for a command line the workshop does not understand.
var errUsage = errors.New(`usage: go run ./cmd/workshop [list | check N | next | hint N [2] | watch | template | durations [-w] | time [-count N] [-note TEXT]]`)

// errNotSolved is returned by check when the exercise's check did not pass,
// so the command exits 1 as go test does.
var errNotSolved = errors.New("not solved yet")

func (w *workshop) main(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return w.list()
	}
	number := func() (int, error) {
		if len(args) < 2 {
			return 0, fmt.Errorf("%s needs an exercise number: %w", args[0], errUsage)
		}
		n, err := strconv.Atoi(strings.TrimLeft(args[1], "0"))
		if err != nil {
			return 0, fmt.Errorf("exercise %s is not a number: %w", shop.Quote(args[1]), errUsage)
		}
		return n, nil
	}
	switch args[0] {
	case "list":
		return w.list()
	case "next":
		return w.next()
	case "check":
		n, err := number()
		if err != nil {
			return err
		}
		return w.check(ctx, n)
	case "hint":
		n, err := number()
		if err != nil {
			return err
		}
		stage := 1
		if len(args) > 2 {
			if stage, err = strconv.Atoi(args[2]); err != nil || stage < 1 {
				return fmt.Errorf("hint stage %s is not 1 or 2: %w", shop.Quote(args[2]), errUsage)
			}
		}
		return w.hint(n, stage)
	case "watch":
		ticker := time.NewTicker(watchEvery)
		defer ticker.Stop()
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		return w.watch(ctx, ticker.C)
	case "template":
		return w.template()
	case "durations":
		return w.durations(args[1:])
	case "time":
		return w.timeCommands(ctx, args[1:])
	}
	return fmt.Errorf("unknown command %s: %w", shop.Quote(args[0]), errUsage)
}

// progressFile keeps the verdict of each exercise's last check.
const progressFile = "mine/progress.txt"

// progress reads which exercises the last checks found solved.
func (w *workshop) progress() (map[int]bool, error) {
	solved := map[int]bool{}
	text, err := os.ReadFile(w.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return solved, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read progress: %w", err)
	}
	for _, line := range strings.Split(string(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimLeft(f[0], "0"))
		if err != nil {
			continue // a line a trainee typed: ignore it rather than fail
		}
		solved[n] = f[1] == "solved"
	}
	return solved, nil
}

// record keeps the verdict of exercise n's check.
func (w *workshop) record(n int, solved bool) error {
	progress, err := w.progress()
	if err != nil {
		return err
	}
	progress[n] = solved
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# written by go run ./cmd/workshop check: the verdict of each exercise's last check\n")
	for _, e := range exercises {
		verdict, ok := progress[e.n]
		if !ok {
			continue
		}
		word := "not-yet"
		if verdict {
			word = "solved"
		}
		fmt.Fprintf(&b, "%02d %s\n", e.n, word)
	}
	path := w.statePath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	return nil
}

// title returns lesson e's short title, "N. Name", or its file when the
// lesson cannot be read.
func (w *workshop) title(e exercise) string {
	d, err := readDoc(filepath.Join(w.root, e.lesson))
	if err != nil || d.title == "" {
		return e.lesson
	}
	return d.shortTitle()
}

// list prints every exercise with its verdict, and the next step.
func (w *workshop) list() error {
	progress, err := w.progress()
	if err != nil {
		return err
	}
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	fmt.Fprintln(w.out, "works-vs-scales: your exercises (verdicts of your last checks, kept in "+progressFile+")")
	fmt.Fprintln(w.out)
	done := 0
	for _, e := range exercises {
		status := "not yet"
		if progress[e.n] {
			status = "solved"
			done++
		}
		needs := "needs PostgreSQL"
		if !e.needsDB {
			needs = "pure Go: needs no database"
		}
		fmt.Fprintf(w.out, "  %-7s  %-24s %-28s %s\n", status, w.title(e), e.dir()+"/", needs)
	}
	fmt.Fprintf(w.out, "\n%d of %d solved.\n", done, len(exercises))
	return w.next()
}

// next prints the first exercise not yet solved, and how to check it.
func (w *workshop) next() error {
	progress, err := w.progress()
	if err != nil {
		return err
	}
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	for _, e := range exercises {
		if progress[e.n] {
			continue
		}
		fmt.Fprintf(w.out, "Next: %s. Read %s, change %s/, then check it:\n\n", w.title(e), e.lesson, e.dir())
		fmt.Fprintf(w.out, "    go run ./cmd/workshop check %d\n\n", e.n)
		fmt.Fprintf(w.out, "Stuck? go run ./cmd/workshop hint %d\n", e.n)
		return nil
	}
	fmt.Fprintln(w.out, "Every exercise is solved. Close with lessons/99-checklist.md: the questions to ask of your own code.")
	return nil
}

// checkArgs are the arguments of go test that run exercise e's check: its
// lesson's test package alone, so that another exercise that does not compile
// is not in the way.
func checkArgs(e exercise) []string {
	return []string{"test", "-tags", "exercise", "-count", "1", "-v", "-run", fmt.Sprintf("^TestExercise%02d$", e.n), "./" + e.bench()}
}

var (
	logLine   = regexp.MustCompile(`^\s+\w+_test\.go:\d+: (.*)$`)
	buildFail = regexp.MustCompile(`(?m)^(# works-vs-scales|FAIL\s+\S+ \[(build|setup) failed\])`)
)

// check runs exercise n's check and prints its verdict: solved, with what the
// check measured; not yet, with what it found wrong; or what is missing to
// run it at all.
func (w *workshop) check(ctx context.Context, n int) error {
	e, err := w.exercise(n)
	if err != nil {
		return err
	}
	title := w.title(e)
	args := checkArgs(e)
	fmt.Fprintf(w.out, "Checking %s: go %s\n\n", title, strings.Join(quoteArgs(args), " "))
	out, runErr := w.run.run(ctx, w.root, "go", args...)
	text := string(out)
	pass := regexp.MustCompile(fmt.Sprintf(`(?m)^--- PASS: TestExercise%02d `, n)).MatchString(text)
	fail := regexp.MustCompile(fmt.Sprintf(`(?m)^--- FAIL: TestExercise%02d `, n)).MatchString(text)
	switch {
	case runErr == nil && pass:
		fmt.Fprintf(w.out, "Solved: %s.\n", title)
		if measured := logged(text); len(measured) > 0 {
			fmt.Fprintln(w.out, "\nWhat the check measured:")
			for _, m := range measured {
				fmt.Fprintln(w.out, "  "+m)
			}
		} else if said := checkSentence(w.root, e); said != "" {
			fmt.Fprintln(w.out, "\n"+said)
		}
		fmt.Fprintln(w.out)
		if err := w.record(n, true); err != nil {
			return err
		}
		return w.next()
	case strings.Contains(text, pgtest.ErrNoDatabase.Error()):
		fmt.Fprintf(w.out, "Not checked: exercise %d needs PostgreSQL, and none was found.\n", n)
		fmt.Fprintln(w.out, "Set WORKSHOP_DATABASE_URL to a server, or start Docker (lesson 0, \"Getting a database\").")
		if !e.needsDB {
			fmt.Fprintln(w.out, "(This exercise itself needs no database: tell the trainer, the check should not have asked for one.)")
		}
		fmt.Fprintln(w.out, "\nThe harness said:\n\n"+indent(said(text, pgtest.ErrNoDatabase.Error())))
		return errNotSolved
	case strings.Contains(text, "no Redis available"):
		fmt.Fprintf(w.out, "Not checked: exercise %d needs Redis, and none was found.\n", n)
		fmt.Fprintln(w.out, "Set WORKSHOP_REDIS_URL, or start Docker (README, \"How PostgreSQL and Redis are found\").")
		return errNotSolved
	case buildFail.MatchString(text):
		fmt.Fprintf(w.out, "Not yet: the code does not compile. What the compiler said:\n\n%s\n", indent(compilerLines(text)))
		if err := w.record(n, false); err != nil {
			return err
		}
		return errNotSolved
	case fail:
		fmt.Fprintf(w.out, "Not yet: %s. What the check found:\n\n%s\n", title, indent(failure(text, n)))
		fmt.Fprintf(w.out, "\nStuck? go run ./cmd/workshop hint %d\n", n)
		if err := w.record(n, false); err != nil {
			return err
		}
		return errNotSolved
	case runErr == nil:
		fmt.Fprintf(w.out, "Not checked: go test ran no check named TestExercise%02d. Is %s/exercise_test.go there?\n", n, e.bench())
		return errNotSolved
	}
	fmt.Fprintf(w.out, "Not checked: go test failed before the check could say anything (%v). Its last lines:\n\n%s\n", runErr, indent(tail(text, 20)))
	return errNotSolved
}

// said returns what the test printed from the line holding marker to the
// end of the test's output, without the indentation go test added.
func said(output, marker string) string {
	var lines []string
	for _, line := range strings.Split(output, "\n") {
		if len(lines) == 0 && !strings.Contains(line, marker) {
			continue
		}
		if strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "FAIL") {
			break
		}
		if m := logLine.FindStringSubmatch(line); m != nil {
			line = m[1]
		}
		lines = append(lines, strings.TrimPrefix(line, "        "))
	}
	return strings.Join(lines, "\n")
}

// logged returns what the check logged with t.Log, in order.
func logged(output string) []string {
	var lines []string
	for _, line := range strings.Split(output, "\n") {
		if m := logLine.FindStringSubmatch(line); m != nil {
			lines = append(lines, m[1])
		}
	}
	return lines
}

// failure returns the lines the check printed between its start and its
// failure, without the test framework's bookkeeping.
func failure(output string, n int) string {
	start := fmt.Sprintf("=== RUN   TestExercise%02d", n)
	var lines []string
	in := false
	for _, line := range strings.Split(output, "\n") {
		switch {
		case strings.HasPrefix(line, start):
			in = true
			continue
		case strings.HasPrefix(line, "--- FAIL"):
			in = false
		}
		trimmed := strings.TrimSpace(line)
		if !in || trimmed == "" || strings.HasPrefix(trimmed, "Error Trace:") || strings.HasPrefix(trimmed, "Test:") {
			continue
		}
		if m := logLine.FindStringSubmatch(line); m != nil {
			trimmed = m[1]
		}
		lines = append(lines, strings.TrimPrefix(trimmed, "Error:"))
	}
	if len(lines) == 0 {
		return tail(output, 20)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// compilerLines returns the compiler's messages in output.
func compilerLines(output string) string {
	var lines []string
	for _, line := range strings.Split(output, "\n") {
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "ok ") || strings.TrimSpace(line) == "" {
			continue
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// checkSentence returns the lesson's sentence saying what the check measures.
func checkSentence(root string, e exercise) string {
	d, err := readDoc(filepath.Join(root, e.lesson))
	if err != nil {
		return ""
	}
	text, _ := d.section("Exercise")
	for _, s := range sentences(withoutCode(text)) {
		if strings.HasPrefix(s, "The check") {
			return s
		}
	}
	return ""
}

// sentences splits prose into sentences, roughly: at paragraph breaks, and
// at a period followed by a space.
func sentences(text string) []string {
	var out []string
	for _, para := range regexp.MustCompile(`\n\s*\n`).Split(text, -1) {
		flat := strings.Join(strings.Fields(para), " ")
		for s := range strings.SplitSeq(flat, ". ") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if !strings.ContainsAny(s[len(s)-1:], ".:!?") {
				s += "."
			}
			out = append(out, s)
		}
	}
	return out
}

// hint prints exercise n's hint at stage: 1 is what the lesson says about it,
// 2 a nudge. No stage gives the answer.
func (w *workshop) hint(n, stage int) error {
	e, err := w.exercise(n)
	if err != nil {
		return err
	}
	switch stage {
	case 1:
		d, err := readDoc(filepath.Join(w.root, e.lesson))
		if err != nil {
			return err
		}
		fmt.Fprintf(w.out, "Hint 1 for %s: what the lesson says.\n\n", d.shortTitle())
		if why, ok := d.section("Why it breaks"); ok {
			fmt.Fprintln(w.out, "Why it breaks:\n\n"+indent(prose(why)))
		}
		if task, ok := d.section("Exercise"); ok {
			fmt.Fprintln(w.out, "\nThe exercise:\n\n"+indent(prose(task)))
		}
		fmt.Fprintf(w.out, "\nStill stuck? go run ./cmd/workshop hint %d 2\n", n)
	case 2:
		fmt.Fprintf(w.out, "Hint 2 for %s: a nudge.\n\n%s\n", w.title(e), indent(wrap(e.nudge, 88)))
		fmt.Fprintf(w.out, "\nThat is the last hint: the lesson's scales version does the same for its own problem; read it, then write yours.\n")
	default:
		return fmt.Errorf("hint stage %d: there are two (1: the lesson, 2: a nudge): %w", stage, errUsage)
	}
	return nil
}

// answer matches a sentence that points at an answer, which hints leave out.
var answer = regexp.MustCompile(`One answer is`)

// prose returns a section's text without its code blocks, links' targets,
// "Next:" line or the sentence that points at an answer.
func prose(text string) string {
	var items []string
	var cur []string
	flush := func() {
		var keep []string
		for _, s := range sentences(strings.Join(cur, " ")) {
			if !answer.MatchString(s) {
				keep = append(keep, stripLinks(s))
			}
		}
		if len(keep) > 0 {
			items = append(items, wrap(strings.Join(keep, " "), 88))
		}
		cur = nil
	}
	for _, line := range strings.Split(withoutCode(text), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "|") {
			flush()
		}
		if strings.HasPrefix(line, "|") { // a table: leave it to the lesson
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return strings.Join(items, "\n")
}

// withoutCode returns markdown without its code blocks, generated parts'
// markers and "Next:" line.
func withoutCode(text string) string {
	var keep []string
	fence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if fence || strings.HasPrefix(line, "Next:") || strings.HasPrefix(line, "<!--") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

var link = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// stripLinks keeps a markdown link's text and drops its target.
func stripLinks(s string) string { return link.ReplaceAllString(s, "$1") }

// wrap breaks text into lines of at most width bytes, at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		if n > 0 && n+1+len(word) > width {
			b.WriteString("\n")
			n = 0
		} else if n > 0 {
			b.WriteString(" ")
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

// indent puts two spaces before every line of text.
func indent(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// quoteArgs quotes the arguments a shell would need quoted, for display.
func quoteArgs(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.ContainsAny(a, "^$|*") {
			out[i] = "'" + a + "'"
		}
	}
	return out
}

// template prints the names of the template databases the harness seeds, and
// how to look at one with psql.
func (w *workshop) template() error {
	fmt.Fprintln(w.out, "The harness seeds each size of the shop into a template database named:")
	fmt.Fprintln(w.out)
	for _, s := range []shop.Scale{shop.Small, shop.Large} {
		fmt.Fprintf(w.out, "  %s\n", pgtest.TemplateName(s))
	}
	fmt.Fprintln(w.out, "\n(the second only after a run with WORKSHOP_LARGE=1). To look around, copy one:")
	fmt.Fprintf(w.out, "\n  createdb -T %s shop && psql shop\n", pgtest.TemplateName(shop.Small))
	fmt.Fprintln(w.out, "\nThe templates on your server: psql -l | grep _tpl_")
	return nil
}

// fields returns the fields of a TSV line.
func fields(line string) []string { return strings.Split(line, "\t") }

// trimCR drops the carriage returns a file edited on Windows may carry.
func trimCR(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r"), nil) }
