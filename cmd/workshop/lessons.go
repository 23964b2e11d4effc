package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// An exercise is one lesson's exercise, found in the tree: the lesson's file
// lessons/NN-slug.md, and the folders named after its slug without hyphens
// (exercises/<name>, bench/<name>), so that no table ties them.
type exercise struct {
	n       int    // the lesson's number, NN
	lesson  string // the lesson's file, from the repository's root
	name    string // the lesson's folders' name: its slug without hyphens
	needsDB bool   // whether its check uses the database harness (pgtest)
	race    bool   // whether the lesson's command for its check has -race
	nudge   string // the second hint, from the lesson's nudge comment: a direction, never the answer
}

// dir is the exercise's package, from the repository's root.
func (e exercise) dir() string { return "exercises/" + e.name }

// bench is the lesson's test package, from the repository's root.
func (e exercise) bench() string { return "bench/" + e.name }

// lessonFile matches a numbered lesson's file name: 01-n-plus-one.md.
var lessonFile = regexp.MustCompile(`^(\d\d)-([a-z0-9-]+)\.md$`)

// nudgeComment is a lesson's second hint: an HTML comment in its Exercise
// section, which the lesson does not show and hint 1 leaves out.
var nudgeComment = regexp.MustCompile(`(?s)<!-- nudge: (.*?) -->`)

// findExercises returns the exercises of the repository at root, in lesson
// order: every lessons/NN-slug.md with an exercises/<slug without hyphens>
// folder. Its check is TestExerciseNN in bench/<name>/exercise_test.go, and it
// needs PostgreSQL if that file or the check's (exercise_check_test.go) uses
// the harness.
func findExercises(root string) ([]exercise, error) {
	paths, err := filepath.Glob(filepath.Join(root, "lessons", "[0-9][0-9]-*.md"))
	if err != nil {
		return nil, err
	}
	var found []exercise
	for _, p := range paths {
		m := lessonFile.FindStringSubmatch(filepath.Base(p))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		e := exercise{n: n, lesson: "lessons/" + m[0], name: strings.ReplaceAll(m[2], "-", "")}
		if info, err := os.Stat(filepath.Join(root, e.dir())); err != nil || !info.IsDir() {
			continue // lesson 0, the checklist: no exercise
		}
		text, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read lesson: %w", err)
		}
		if nudge := nudgeComment.FindSubmatch(text); nudge != nil {
			e.nudge = strings.Join(strings.Fields(string(nudge[1])), " ")
		}
		d, err := readDoc(p)
		if err != nil {
			return nil, err
		}
		e.race = checkNeedsRace(d)
		for _, f := range []string{"exercise_test.go", "exercise_check_test.go"} {
			code, err := os.ReadFile(filepath.Join(root, e.bench(), f))
			if err != nil {
				return nil, fmt.Errorf("lesson %d's check: %w", n, err)
			}
			e.needsDB = e.needsDB || strings.Contains(string(code), "pgtest.")
		}
		found = append(found, e)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no exercises under %s: run the workshop from the repository's root", root)
	}
	return found, nil
}

// checkNeedsRace reports whether a command for the check in the lesson's
// Exercise section (go test -tags exercise) runs it with -race: the lesson
// says so, and go run ./cmd/workshop check does as the lesson says.
func checkNeedsRace(d doc) bool {
	for _, b := range d.blocks {
		if !strings.HasPrefix(b.section, "Exercise") {
			continue
		}
		for _, c := range commands(b) {
			if strings.Contains(c, "go test") && strings.Contains(c, "-tags exercise") && slices.Contains(strings.Fields(c), "-race") {
				return true
			}
		}
	}
	return false
}

// withoutNudge returns a lesson's text with its nudge comment blanked, line
// for line: it is the second hint, neither read with the lesson nor shown by
// the first.
func withoutNudge(text []byte) []byte {
	return nudgeComment.ReplaceAllFunc(text, func(c []byte) []byte {
		return bytes.Repeat([]byte("\n"), bytes.Count(c, []byte("\n")))
	})
}

// exercises returns the workshop's exercises, found in the tree on first use.
func (w *workshop) exercises() ([]exercise, error) {
	if w.found == nil {
		found, err := findExercises(w.root)
		if err != nil {
			return nil, err
		}
		w.found = found
	}
	return w.found, nil
}

// exercise returns lesson n's exercise.
func (w *workshop) exercise(n int) (exercise, error) {
	all, err := w.exercises()
	if err != nil {
		return exercise{}, err
	}
	for _, e := range all {
		if e.n == n {
			return e, nil
		}
	}
	return exercise{}, fmt.Errorf("no exercise %d: the exercises are those of lessons %s", n, exerciseNumbers(all))
}

// A section is one "## " section of a lesson: its heading and its lines.
type section struct {
	heading string
	text    string
}

// A block is one fenced sh code block of a lesson, with the section it is in.
type block struct {
	section string
	line    int // the line of its opening fence, from 1
	text    string
}

// A doc is a lesson read from its file.
type doc struct {
	path     string
	title    string // the text of its "# " heading
	sections []section
	blocks   []block
	words    int // the words of its prose and code, generated parts included
}

// readDoc reads the markdown file at path.
func readDoc(path string) (doc, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return doc{}, fmt.Errorf("read lesson: %w", err)
	}
	d := doc{path: path}
	var cur *section
	var fence, sh bool
	var code strings.Builder
	scan := bufio.NewScanner(bytes.NewReader(withoutNudge(text)))
	scan.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; scan.Scan(); line++ {
		text := scan.Text()
		d.words += len(strings.Fields(text))
		if cur != nil && (fence || !strings.HasPrefix(text, "## ")) {
			cur.text += text + "\n"
		}
		switch {
		case strings.HasPrefix(text, "```") && !fence:
			fence, sh = true, strings.TrimPrefix(text, "```") == "sh"
			code.Reset()
			if sh {
				heading := ""
				if cur != nil {
					heading = cur.heading
				}
				d.blocks = append(d.blocks, block{section: heading, line: line})
			}
			continue
		case strings.HasPrefix(text, "```") && fence:
			if sh {
				d.blocks[len(d.blocks)-1].text = code.String()
			}
			fence, sh = false, false
			continue
		case fence:
			code.WriteString(text + "\n")
		case strings.HasPrefix(text, "# ") && d.title == "":
			d.title = strings.TrimPrefix(text, "# ")
		case strings.HasPrefix(text, "## "):
			d.sections = append(d.sections, section{heading: strings.TrimPrefix(text, "## ")})
			cur = &d.sections[len(d.sections)-1]
		}
	}
	if err := scan.Err(); err != nil {
		return doc{}, fmt.Errorf("read lesson %s: %w", path, err)
	}
	return d, nil
}

// section returns the text of the section whose heading starts with heading.
func (d doc) section(heading string) (string, bool) {
	for _, s := range d.sections {
		if strings.HasPrefix(s.heading, heading) {
			return s.text, true
		}
	}
	return "", false
}

// shortTitle is the part of a lesson's title before its colon: "1. N+1 queries".
func (d doc) shortTitle() string {
	title, _, _ := strings.Cut(d.title, ":")
	title, _, _ = strings.Cut(title, ", and")
	return title
}

// lessonDocs reads the numbered lessons (not the checklist)
// from the repository at root.
func lessonDocs(root string) ([]doc, error) {
	paths, err := filepath.Glob(filepath.Join(root, "lessons", "[0-9][0-9]-*.md"))
	if err != nil {
		return nil, err
	}
	var docs []doc
	for _, p := range paths {
		if strings.HasPrefix(filepath.Base(p), "99-") {
			continue
		}
		d, err := readDoc(p)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// maintainerMark opens a sh block whose commands only the maintainer runs:
// they regenerate the committed results.
const maintainerMark = "# maintainer:"

// commands returns the shell commands of a block, one a line, with
// continuation lines joined and comments dropped.
func commands(b block) []string {
	var out []string
	var cur string
	for _, line := range strings.Split(b.text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line = cur + line
		cur = ""
		if i := strings.Index(line, " #"); i >= 0 && !strings.Contains(line[:i], "'") {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// flagValue returns the value of the flag name (as "-name v" or "-name=v") in
// command, unquoted, and whether it is there.
func flagValue(command, name string) (string, bool) {
	re := regexp.MustCompile(`(?:^|\s)-` + regexp.QuoteMeta(name) + `(?:=|\s+)('[^']*'|"[^"]*"|\S+)`)
	m := re.FindStringSubmatch(command)
	if m == nil {
		return "", false
	}
	return strings.Trim(m[1], `'"`), true
}

// exerciseNumbers lists the lessons that have an exercise: "1-13, 16".
func exerciseNumbers(exercises []exercise) string {
	var parts []string
	for i := 0; i < len(exercises); {
		j := i
		for j+1 < len(exercises) && exercises[j+1].n == exercises[j].n+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(exercises[i].n))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", exercises[i].n, exercises[j].n))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
