package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"works-vs-scales/internal/pgtest"
)

// checkArgs are the arguments of go test that run exercise e's check: its
// lesson's test package alone, so that another exercise that does not compile
// is not in the way; with -race when the lesson's own command for it has
// -race.
func checkArgs(e exercise) []string {
	args := []string{"test", "-tags", "exercise"}
	if e.race {
		args = append(args, "-race")
	}
	return append(args, "-count", "1", "-v", "-run", fmt.Sprintf("^TestExercise%02d$", e.n), "./"+e.bench())
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
	checked := verdict{hash: filesHash(filepath.Join(w.root, e.dir())), at: w.now()} // the files the check is given
	fmt.Fprintf(w.out, "Checking %s: go %s\n\n", title, strings.Join(quoteArgs(args), " "))
	out, runErr := w.run.run(ctx, w.root, "go", args...)
	text := string(out)
	pass := regexp.MustCompile(fmt.Sprintf(`(?m)^--- PASS: TestExercise%02d `, n)).MatchString(text)
	fail := regexp.MustCompile(fmt.Sprintf(`(?m)^--- FAIL: TestExercise%02d `, n)).MatchString(text)
	started := strings.Contains(text, fmt.Sprintf("=== RUN   TestExercise%02d", n))
	crash := panicked(text)
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
		checked.solved = true
		if err := w.keep(ctx, n, checked); err != nil {
			return err
		}
		return w.next(0)
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
		if err := w.keep(ctx, n, checked); err != nil {
			return err
		}
		return errNotSolved
	case fail || started && crash != "" && runErr != nil:
		found := failure(text, n)
		switch {
		case crash != "":
			fmt.Fprintf(w.out, "Not yet: %s. The check stopped with a panic:\n\n%s\n", title, indent(crash))
			if found != "" {
				fmt.Fprintf(w.out, "\nWhat the check printed before it:\n\n%s\n", indent(found))
			}
		case found == "":
			fmt.Fprintf(w.out, "Not yet: %s. What go test printed:\n\n%s\n", title, indent(tail(text, 20)))
		default:
			fmt.Fprintf(w.out, "Not yet: %s. What the check found:\n\n%s\n", title, indent(found))
		}
		fmt.Fprintf(w.out, "\nStuck? go run ./cmd/workshop hint %d\n", n)
		if err := w.keep(ctx, n, checked); err != nil {
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
		case strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "panic: "), strings.HasPrefix(line, "fatal error: "):
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
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// panicked returns the panic (or fatal error) that stopped the test binary,
// with the start of its goroutines' stacks, or "" if none did: a check that
// panics, or a synctest bubble that deadlocks, ends the binary there, and
// this is all it said.
func panicked(output string) string {
	const most = 30 // lines: the panic and the frames that name the code
	var lines []string
	for _, line := range strings.Split(output, "\n") {
		if len(lines) == 0 && !strings.HasPrefix(line, "panic: ") && !strings.HasPrefix(line, "fatal error: ") {
			continue
		}
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "exit status ") || len(lines) == most {
			break
		}
		lines = append(lines, line)
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

// keep records a verdict in the trainee's progress file and tells the room,
// if there is one: a room that cannot be told is said, not an error.
func (w *workshop) keep(ctx context.Context, n int, v verdict) error {
	if err := w.record(n, v); err != nil {
		return err
	}
	if w.tell == nil {
		return nil
	}
	if _, ok := lookupDatabase(); !ok {
		return nil // no shared server: no room
	}
	if err := w.tell(ctx, n, v); err != nil {
		fmt.Fprintf(w.out, "(The room's table was not told: %v.)\n", err)
	}
	return nil
}
