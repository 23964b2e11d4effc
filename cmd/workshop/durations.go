package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"works-vs-scales/shop"
)

// Reading rates and the trainer's allowances the durations are computed with.
const (
	proseWordsPerMinute = 200 // prose, read with attention
	codeLinesPerMinute  = 20  // Go and shell, read to understand
	exerciseMinutes     = 20  // the trainer's allowance, not measured
	discussionMinutes   = 10  // the trainer's allowance, not measured
	benchCountInLessons = 6   // the -count of the lessons' benchmark commands
)

// Files of the trainer's durations.
const (
	timingsFile   = "lessons/results/timings.txt"
	durationsFile = "lessons/results/trainer-durations.md"
)

// agendas are the trainer's agendas: the lessons each covers.
var agendas = []struct {
	name    string
	lessons []int
}{
	{"half a day", []int{0, 1, 2, 5}},
	{"a day", []int{0, 1, 2, 3, 5, 6, 7}},
	{"two days", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	{"a day on 12–18", []int{0, 12, 13, 14, 15, 16, 17, 18}},
	{"two days on 1–18", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}},
}

// timing is what time measured for one lesson, in seconds.
type timing struct {
	tests, bench, check float64
	failed              string // the kinds of block that did not exit 0
}

// timings is a timings file read back.
type timings struct {
	header  []string // its "key: value" lines
	count   int      // the -count the benchmarks were run with
	lessons map[int]timing
}

// readTimings reads the timings file.
func readTimings(path string) (timings, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return timings{}, fmt.Errorf("read timings: %w (make them: go run ./cmd/workshop time)", err)
	}
	ts := timings{lessons: map[int]timing{}}
	for i, line := range strings.Split(string(trimCR(text)), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "lesson\t"):
		case strings.Contains(line, ": ") && !strings.Contains(line, "\t"):
			ts.header = append(ts.header, line)
			if v, ok := strings.CutPrefix(line, "count: "); ok {
				if ts.count, err = strconv.Atoi(v); err != nil || ts.count < 1 {
					return timings{}, fmt.Errorf("%s:%d: count %s is not a positive number", path, i+1, shop.Quote(v))
				}
			}
		default:
			f := fields(line)
			if len(f) < 4 {
				return timings{}, fmt.Errorf("%s:%d: want lesson, tests, benchmarks and check seconds, got %s", path, i+1, shop.Quote(line))
			}
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return timings{}, fmt.Errorf("%s:%d: lesson %s: %w", path, i+1, shop.Quote(f[0]), err)
			}
			var t timing
			for j, p := range []*float64{&t.tests, &t.bench, &t.check} {
				if *p, err = strconv.ParseFloat(f[j+1], 64); err != nil || *p < 0 {
					return timings{}, fmt.Errorf("%s:%d: seconds %s are not a duration", path, i+1, shop.Quote(f[j+1]))
				}
			}
			if len(f) > 4 {
				t.failed = f[4]
			}
			ts.lessons[n] = t
		}
	}
	if ts.count == 0 {
		return timings{}, fmt.Errorf("%s: no count: line", path)
	}
	return ts, nil
}

// reading counts what a lesson gives to read: words of prose, and lines of
// code. Generated tables and plans (insert and include parts) are read while
// the commands run, so they are not counted.
func reading(path string) (words, codeLines int, err error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read lesson: %w", err)
	}
	fence, generated := false, false
	for _, line := range strings.Split(string(withoutNudge(trimCR(text))), "\n") {
		switch {
		case strings.HasPrefix(line, "<!-- insert:") || strings.HasPrefix(line, "<!-- include:"):
			generated = true
		case strings.HasPrefix(line, "<!-- end -->"):
			generated = false
		case generated:
		case strings.HasPrefix(line, "```"):
			fence = !fence
		case fence:
			if strings.TrimSpace(line) != "" {
				codeLines++
			}
		default:
			words += len(strings.Fields(line))
		}
	}
	return words, codeLines, nil
}

// minutes rounds seconds up to whole minutes.
func minutes(seconds float64) int { return int(math.Ceil(seconds / 60)) }

// hm formats minutes as "2 h 5 min".
func hm(m int) string {
	if m < 60 {
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d h %02d min", m/60, m%60)
}

// durationsTable returns the trainer's table of durations: per lesson, its
// reading time (computed from its words), the measured time of its commands,
// and the agendas' totals.
func durationsTable(root string) (string, error) {
	ts, err := readTimings(filepath.Join(root, timingsFile))
	if err != nil {
		return "", err
	}
	docs, err := lessonDocs(root)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Made by `go run ./cmd/workshop durations -w` from the lessons' text and [`%s`](results/%s), which `go run ./cmd/workshop time -count %d` measured (%s). ",
		filepath.Base(timingsFile), filepath.Base(timingsFile), ts.count, strings.Join(ts.header, "; "))
	fmt.Fprintf(&b, "Reading at %d words of prose and %d lines of code a minute; the tables the commands make are read while they run. "+
		"Exercise (%d min) and discussion (%d min) are the trainer's allowance, not measured. "+
		"A lesson's total runs its benchmarks with `-count %d`, as a room should (see above); the lesson's own `-count %d` takes about %d times as long.\n\n",
		proseWordsPerMinute, codeLinesPerMinute, exerciseMinutes, discussionMinutes, ts.count, benchCountInLessons, benchCountInLessons/ts.count)
	fmt.Fprintf(&b, "| lesson | words | code lines | read | tests | benchmarks, `-count %d` | benchmarks, `-count %d` (≈) | check | total |\n", ts.count, benchCountInLessons)
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	total := map[int]int{}
	unmeasured := map[int]bool{}
	for _, d := range docs {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(d.path), "-", 2)[0])
		if err != nil {
			return "", fmt.Errorf("lesson %s: no number: %w", d.path, err)
		}
		words, code, err := reading(d.path)
		if err != nil {
			return "", err
		}
		read := int(math.Ceil(float64(words)/proseWordsPerMinute + float64(code)/codeLinesPerMinute))
		t, measured := ts.lessons[n]
		total[n] = read
		if n > 0 {
			total[n] += exerciseMinutes + discussionMinutes
		}
		cells := []string{"", "", "", ""}
		if n > 0 && !measured {
			cells = []string{"not measured", "not measured", "not measured", "not measured"}
			unmeasured[n] = true
		}
		if measured {
			total[n] += minutes(t.tests) + minutes(t.bench) + minutes(t.check)
			cells = []string{
				fmt.Sprintf("%.0f s", t.tests),
				fmt.Sprintf("%.0f s", t.bench),
				hm(minutes(t.bench * scale(d, ts.count))),
				fmt.Sprintf("%.0f s", t.check),
			}
			if t.failed != "" {
				cells[0] += " (" + t.failed + " failed)"
			}
		}
		sum := hm(total[n])
		if unmeasured[n] {
			sum = "more than " + sum
		}
		fmt.Fprintf(&b, "| [%s](%s) | %d | %d | %d min | %s | %s | %s | %s | %s |\n",
			d.shortTitle(), filepath.Base(d.path), words, code, read, cells[0], cells[1], cells[2], cells[3], sum)
	}
	b.WriteString("\n| agenda | lessons | total, breaks not included |\n|---|---|---|\n")
	for _, a := range agendas {
		sum := 0
		var names, missing []string
		for _, n := range a.lessons {
			sum += total[n]
			names = append(names, strconv.Itoa(n))
			if unmeasured[n] {
				missing = append(missing, strconv.Itoa(n))
			}
		}
		what := hm(sum)
		if len(missing) > 0 {
			what = fmt.Sprintf("more than %s: the commands of %s were not measured", what, strings.Join(missing, ", "))
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", a.name, strings.Join(names, ", "), what)
	}
	return b.String(), nil
}

// scale returns how many times longer the lesson's own benchmark commands
// take than at -count count: 6/count when they run with -count 6, 1 when they
// repeat runs themselves (lesson 8's loop) and time left their -count alone.
func scale(d doc, count int) float64 {
	for _, b := range d.blocks {
		if inMeasure(d, b.section) && measures(b.text) && slices.ContainsFunc(countFlag.FindAllString(b.text, -1), func(flag string) bool {
			return flag[len("-count "):] == strconv.Itoa(benchCountInLessons)
		}) {
			return float64(benchCountInLessons) / float64(count)
		}
	}
	return 1
}

// durations prints the trainer's table, or with -w writes it where
// lessons/TRAINER.md inserts it from (then go run ./cmd/lessons puts it there).
func (w *workshop) durations(args []string) error {
	fs := flag.NewFlagSet("durations", flag.ContinueOnError)
	write := fs.Bool("w", false, "write "+durationsFile+" instead of printing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	table, err := durationsTable(w.root)
	if err != nil {
		return err
	}
	if !*write {
		_, err := fmt.Fprint(w.out, table)
		return err
	}
	if err := os.WriteFile(filepath.Join(w.root, durationsFile), []byte(table), 0o644); err != nil {
		return fmt.Errorf("write durations: %w", err)
	}
	changed, err := writeRoomNotes(w.root)
	if err != nil {
		return err
	}
	for _, path := range changed {
		fmt.Fprintln(w.out, "wrote the room note's minutes in", path)
	}
	fmt.Fprintln(w.out, "wrote", durationsFile, "(now go run ./cmd/lessons)")
	return nil
}

// roomMinutes is the figure a lesson's room note, after a block of its
// benchmarks, gives them at -count 1.
var roomMinutes = regexp.MustCompile("(In a room: `-count 1`, about )\\d+( min of benchmarks)")

// writeRoomNotes sets the minutes of every room note in the lessons time
// measured to the minutes of benchmarks it measured, as the trainer's table
// gives them, so that the two never say different things. It returns the
// paths of the lessons it changed.
func writeRoomNotes(root string) ([]string, error) {
	ts, err := readTimings(filepath.Join(root, timingsFile))
	if err != nil {
		return nil, err
	}
	docs, err := lessonDocs(root)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, d := range docs {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(d.path), "-", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("lesson %s: no number: %w", d.path, err)
		}
		t, measured := ts.lessons[n]
		if !measured {
			continue
		}
		text, err := os.ReadFile(d.path)
		if err != nil {
			return nil, fmt.Errorf("room notes: %w", err)
		}
		updated := roomMinutes.ReplaceAll(text, []byte("${1}"+strconv.Itoa(minutes(t.bench))+"${2}"))
		if string(updated) == string(text) {
			continue
		}
		if err := os.WriteFile(d.path, updated, 0o644); err != nil {
			return nil, fmt.Errorf("room notes: %w", err)
		}
		changed = append(changed, d.path)
	}
	return changed, nil
}

var countFlag = regexp.MustCompile(`-count[ =]\d+`)

// measures reports whether a lesson's commands measure (benchmarks, or
// cmd/load's load) rather than test.
func measures(script string) bool {
	return strings.Contains(script, "-bench") || strings.Contains(script, "./cmd/load")
}

// timeCommands runs every lesson's commands once (its Measure it section:
// tests, then benchmarks with -count as given) and its exercise's check, and
// writes how long each took to the timings file. It is the maintainer's: it
// takes as long as the benchmarks do.
func (w *workshop) timeCommands(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("time", flag.ContinueOnError)
	count := fs.Int("count", 1, "the -count to run the lessons' benchmarks with")
	note := fs.String("note", "", "what else the machine was doing")
	out := fs.String("o", timingsFile, "where to write the timings")
	only := fs.String("lessons", "", "time only these lessons (e.g. 14,17), keeping the others' rows of the timings file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *count < 1 {
		return fmt.Errorf("time: -count %d: want 1 or more", *count)
	}
	path := *out
	if !filepath.IsAbs(path) {
		path = filepath.Join(w.root, path)
	}
	chosen, err := lessonNumbers(*only)
	if err != nil {
		return err
	}
	var kept timings // the rows of the lessons not timed again
	if len(chosen) > 0 {
		if kept, err = readTimings(path); err != nil {
			return fmt.Errorf("time: -lessons keeps the other lessons' rows: %w", err)
		}
		if kept.count != *count {
			return fmt.Errorf("time: -lessons %s at -count %d: %s was measured at -count %d", *only, *count, *out, kept.count)
		}
	}
	// Compile first, so the first lesson does not pay for everyone's build.
	for _, warm := range [][]string{{"test", "-count", "1", "-run", "^$", "./bench/..."}, {"test", "-tags", "exercise", "-count", "1", "-run", "^$", "./bench/..."}} {
		if out, err := w.run.run(ctx, w.root, "go", warm...); err != nil {
			return fmt.Errorf("time: build: %w\n%s", err, tail(string(out), 20))
		}
	}
	var head strings.Builder
	if len(chosen) > 0 {
		for _, line := range kept.header {
			fmt.Fprintln(&head, line)
		}
		fmt.Fprintf(&head, "lessons %s: timed again on %s, cpus %d", strings.Join(chosen, ", "), w.now().UTC().Format(time.DateOnly), runtime.NumCPU())
		if *note != "" {
			fmt.Fprintf(&head, ", %s", strings.ReplaceAll(*note, "\n", " "))
		}
		head.WriteString("\n")
	} else {
		fmt.Fprintf(&head, "cpus: %d\ndate: %s\ncount: %d\n", runtime.NumCPU(), w.now().UTC().Format(time.DateOnly), *count)
		if *note != "" {
			fmt.Fprintf(&head, "note: %s\n", strings.ReplaceAll(*note, "\n", " "))
		}
	}
	rows := map[int]string{}
	for n, t := range kept.lessons {
		if !slices.Contains(chosen, strconv.Itoa(n)) {
			rows[n] = fmt.Sprintf("%d\t%.1f\t%.1f\t%.1f\t%s\n", n, t.tests, t.bench, t.check, t.failed)
		}
	}
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	for _, e := range exercises {
		if len(chosen) > 0 && !slices.Contains(chosen, strconv.Itoa(e.n)) {
			continue
		}
		d, err := readDoc(filepath.Join(w.root, e.lesson))
		if err != nil {
			return err
		}
		var t timing
		var failed []string
		for _, blk := range d.blocks {
			if !inMeasure(d, blk.section) || strings.Contains(blk.text, "-fuzz") {
				continue
			}
			var keep []string
			for _, line := range strings.Split(blk.text, "\n") {
				if !strings.Contains(line, "./cmd/report") {
					keep = append(keep, line)
				}
			}
			script := countFlag.ReplaceAllString(strings.Join(keep, "\n"), fmt.Sprintf("-count %d", *count))
			kind, into := "tests", &t.tests
			if measures(script) {
				kind, into = "benchmarks", &t.bench
			}
			fmt.Fprintf(w.out, "lesson %d, %s:\n%s", e.n, kind, indent(script)+"\n")
			start := w.now()
			output, err := w.run.run(ctx, w.root, "bash", "-c", script)
			*into += w.now().Sub(start).Seconds()
			if err != nil {
				failed = append(failed, kind)
				fmt.Fprintf(w.out, "  failed (%v):\n%s\n", err, indent(tail(string(output), 10)))
			}
		}
		start := w.now()
		output, err := w.run.run(ctx, w.root, "go", checkArgs(e)...)
		t.check = w.now().Sub(start).Seconds()
		if strings.Contains(string(output), "[build failed]") {
			failed = append(failed, "check")
			fmt.Fprintf(w.out, "  check did not build (%v)\n", err)
		}
		rows[e.n] = fmt.Sprintf("%d\t%.1f\t%.1f\t%.1f\t%s\n", e.n, t.tests, t.bench, t.check, strings.Join(failed, ","))
		// Written after every lesson, so an interrupted run keeps what it measured.
		b := strings.Builder{}
		b.WriteString(head.String())
		b.WriteString("lesson\ttests-s\tbenchmarks-s\tcheck-s\tfailed\n")
		for _, n := range slices.Sorted(maps.Keys(rows)) {
			b.WriteString(rows[n])
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("write timings: %w", err)
		}
	}
	fmt.Fprintln(w.out, "wrote", *out)
	return nil
}

// lessonNumbers reads -lessons' list, such as "14,17": lessons' numbers
// without leading zeros, or none.
func lessonNumbers(list string) ([]string, error) {
	var ns []string
	for f := range strings.FieldsFuncSeq(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("time: -lessons %s: want lessons' numbers, such as 14,17", shop.Quote(list))
		}
		ns = append(ns, strconv.Itoa(n))
	}
	return ns, nil
}

// inMeasure reports whether the section named heading of d is its Measure it
// section, or one after it and before When not to bother.
func inMeasure(d doc, heading string) bool {
	in := false
	for _, s := range d.sections {
		switch {
		case strings.HasPrefix(s.heading, "Measure it"):
			in = true
		case strings.HasPrefix(s.heading, "When not to bother"):
			in = false
		}
		if s.heading == heading {
			return in
		}
	}
	return false
}
