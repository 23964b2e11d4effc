package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// An exercise is one lesson's exercise: where it is, what its check needs and
// the nudge its second hint gives.
type exercise struct {
	n          int      // the lesson's number
	lesson     string   // the lesson's file, from the repository's root
	dir        string   // the exercise's package, from the repository's root
	benchFiles []string // the lesson's tests and benchmarks in bench/
	needsDB    bool     // whether its check needs PostgreSQL
	nudge      string   // the second hint: a direction, never the answer
}

// exercises are the workshop's exercises, in lesson order.
var exercises = []exercise{
	{1, "lessons/01-n-plus-one.md", "exercises/nplusone", []string{"bench/nplusone_test.go"}, true,
		"Count your queries: one for the posts, then one per post. Ask for the comments of every " +
			"post of the page at once, in the same statement or in one more, and keep three per post " +
			"inside the database, not in Go."},
	{2, "lessons/02-pagination.md", "exercises/pagination", []string{"bench/pagination_test.go"}, true,
		"An offset counts rows, and a new post moves every row by one. Let the token say where the " +
			"last page ended (the last post's sort key, made unique), and ask for what comes after it."},
	{3, "lessons/03-indexes.md", "exercises/indexes", []string{"bench/indexes_test.go"}, true,
		"Read the plan of ProductSales with EXPLAIN: which column does its WHERE filter on, and which " +
			"does its ORDER BY sort on? An index can serve both, in that order."},
	{4, "lessons/04-streaming.md", "exercises/streaming", []string{"bench/export_test.go"}, true,
		"Anything that collects every row before writing the first one holds the whole table. Write " +
			"each row to the writer as it arrives from the database, and keep nothing after."},
	{5, "lessons/05-nested-loops.md", "exercises/nestedloops", []string{"bench/nestedloops_test.go"}, false,
		"Looking a customer up in a list reads the list. Build something from one list, once, in which " +
			"a lookup costs the same however long the list is."},
	{6, "lessons/06-caching.md", "exercises/caching", []string{"bench/caching_test.go"}, true,
		"Keep the answer beside the time you got it, and think about who else holds it: two callers " +
			"at once, and a caller who changes the map you gave them."},
	{7, "lessons/07-stampede.md", "exercises/stampede", []string{"bench/stampede_test.go"}, true,
		"Callers who arrive while the query runs should wait for it rather than start their own. " +
			"golang.org/x/sync, already in go.mod, has a package for exactly that."},
	{8, "lessons/08-validation.md", "exercises/validation", []string{"bench/validation_test.go"}, true,
		"Two separate jobs: decide whether the currency is one the shop takes, and pass the value to " +
			"PostgreSQL as a parameter ($1), never as part of the SQL text."},
	{9, "lessons/09-retries.md", "exercises/retries", []string{"bench/retry_test.go"}, true,
		"Forwarding the key to the gateway is not enough: what does your own table hold when fifty " +
			"callers with one key arrive at once? Let the database decide who goes first."},
	{10, "lessons/10-circuit-breaker.md", "exercises/circuitbreaker", []string{"bench/breaker_test.go"}, true,
		"After a few failures in a row, stop calling the gateway for a while, and write the payment " +
			"somewhere it will be picked up from when the gateway is back."},
	{11, "lessons/11-bulkheads.md", "exercises/bulkheads", []string{"bench/bulkhead_test.go"}, true,
		"One stuck workload can take every connection of a shared pool. Give each workload its own, " +
			"small pool, and put a deadline on every call so nobody waits forever."},
	{12, "lessons/12-races.md", "exercises/races",
		[]string{"bench/stock_test.go", "bench/stock_exercise_test.go", "bench/exercise12_test.go"}, true,
		"A check in Go and then a write is two steps another server can slip between. Let one " +
			"statement, or one constraint, decide: the database sees every server's request."},
	{13, "lessons/13-connections.md", "exercises/connections",
		[]string{"bench/conns_test.go", "bench/conns_exercise_test.go", "bench/exercise13_test.go"}, true,
		"Count what holds a connection while the gateway thinks. Write down that you are about to " +
			"charge, let the connection go, charge, then come back and write what happened."},
	{14, "lessons/14-writes.md", "exercises/writes",
		[]string{"bench/writes_exercise_test.go", "bench/writes_test.go", "bench/exercise14_test.go"}, true,
		"Every line that goes to the database on its own pays a round trip and a commit. Read and " +
			"check the whole file first, then send every good row in one stream, inside one transaction."},
	{15, "lessons/15-observability.md", "exercises/observability",
		[]string{"bench/observe_test.go", "bench/observe_exercise_test.go", "bench/exercise15_test.go"}, true,
		"Read the waterfall: which step has one span per past order? Ask the database for the " +
			"answer of that step in one statement, and let it do the adding up."},
	{16, "lessons/16-overload.md", "exercises/overload",
		[]string{"bench/overload_test.go", "bench/overload_exercise_test.go", "bench/exercise16_test.go"}, false,
		"Count the requests being served. When the count is at the limit, do not wait for a turn: " +
			"answer at once, and say when to come back. Give the turn back however the request ends."},
	{17, "lessons/17-capstone.md", "exercises/capstone",
		[]string{"bench/shopd_exercise_test.go", "bench/shopd_test.go", "bench/exercise17_test.go"}, true,
		"A page is a question for the database, not a slice of everything it holds: ask for one more " +
			"row than the page, and let the token say where the page ended."},
	{18, "lessons/18-replicas.md", "exercises/replicas",
		[]string{"bench/replica_test.go", "bench/replica_exercise_test.go", "bench/exercise18_test.go"}, true,
		"The primary can tell you a position in its log after a write, and a replica how far it has " +
			"replayed. A user who just wrote needs a server past their write; everyone else can use the replica."},
}

// exerciseN returns lesson n's exercise.
func exerciseN(n int) (exercise, error) {
	for _, e := range exercises {
		if e.n == n {
			return e, nil
		}
	}
	return exercise{}, fmt.Errorf("no exercise %d: the exercises are those of lessons %s", n, exerciseNumbers())
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
	f, err := os.Open(path)
	if err != nil {
		return doc{}, fmt.Errorf("read lesson: %w", err)
	}
	defer f.Close()
	d := doc{path: path}
	var cur *section
	var fence, sh bool
	var code strings.Builder
	scan := bufio.NewScanner(f)
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
func exerciseNumbers() string {
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
