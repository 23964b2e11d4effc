package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// traineeBlocks returns every sh block of lessons 0–11 and the README that a
// trainee is told to run: all but the maintainer's.
func traineeBlocks(t *testing.T) map[string][]block {
	t.Helper()
	docs, err := lessonDocs(root)
	require.NoError(t, err)
	readme, err := readDoc(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	docs = append(docs, readme)
	require.GreaterOrEqual(t, len(docs), 13, "lessons 0–11 and the README")
	blocks := map[string][]block{}
	for _, d := range docs {
		for _, b := range d.blocks {
			if strings.HasPrefix(strings.TrimSpace(b.text), maintainerMark) {
				continue
			}
			blocks[d.path] = append(blocks[d.path], b)
		}
	}
	return blocks
}

var (
	// redirect matches a shell redirection into a file, not 2>&1 or >&2.
	redirect = regexp.MustCompile(`(?:^|[^0-9&>])>>?\s*([^\s&;|]+)`)
	// placeholder matches what a reader replaces: <this repository>.
	placeholder = regexp.MustCompile(`<[a-z][^<>]*>`)
	// outputFlags are the flags by which go test and the harness write files.
	outputFlags = []string{"o", "cpuprofile", "memprofile", "blockprofile", "mutexprofile", "trace",
		"coverprofile", "outputdir", "explain-out", "hostile-out", "drill-out"}
	// maintainerOnly are the commands that rewrite tracked files or drop
	// other people's databases.
	maintainerOnly = []string{"./cmd/lessons", "measure.sh", "./cmd/dropdbs"}
)

// writesOnlyUnderMine returns what is wrong with command: a file it writes
// outside mine/, or a maintainer's command.
func writesOnlyUnderMine(command string) []string {
	var wrong []string
	under := func(path string) bool {
		path = strings.Trim(path, `'"`)
		path = strings.TrimPrefix(strings.TrimPrefix(path, "$PWD/"), "${PWD}/")
		return path == "/dev/null" || strings.HasPrefix(path, "mine/") && !strings.Contains(path, "..")
	}
	for _, m := range redirect.FindAllStringSubmatch(placeholder.ReplaceAllString(command, "X"), -1) {
		if !under(m[1]) {
			wrong = append(wrong, "redirects into "+m[1])
		}
	}
	for _, f := range outputFlags {
		if v, ok := flagValue(command, f); ok && !under(v) {
			wrong = append(wrong, "-"+f+" writes "+v)
		}
	}
	for _, m := range maintainerOnly {
		if strings.Contains(command, m) {
			wrong = append(wrong, "runs the maintainer's "+m)
		}
	}
	return wrong
}

func TestWritesOnlyUnderMineCatchesWhatChangesTrackedFiles(t *testing.T) {
	for _, c := range []string{
		"go test -run '^$' -bench X ./bench > lessons/results/01-n-plus-one.bench",
		"done > lessons/results/08-validation.bench",
		"go test -run '^$' -bench X ./bench >> out.txt",
		"go test -run T ./bench -args -explain-out=$PWD/lessons/results/03-explain.txt",
		`go test -run T ./bench -args -hostile-out="$PWD/lessons/results/08-hostile.md"`,
		"go test -run '^$' -bench X -cpuprofile cpu.out -o bench.test ./bench",
		"go test -bench X ./bench > mine/../lessons/x.bench",
		"go run ./cmd/lessons",
		"bash lessons/results/measure.sh",
		"go run ./cmd/dropdbs",
	} {
		require.NotEmpty(t, writesOnlyUnderMine(c), c)
	}
	for _, c := range []string{
		"go test -run '^$' -bench X ./bench > mine/01-n-plus-one.bench",
		"go test -run '^$' -bench X ./bench 2>&1 > /dev/null",
		`go test -run T ./bench -args -hostile-out="$PWD/mine/08-hostile.md"`,
		"go test -run '^$' -bench X -cpuprofile mine/cpu.out -o mine/bench.test ./bench",
		"go run ./cmd/report -compare lessons/results/01-n-plus-one.bench mine/01-n-plus-one.bench",
		"git clone <this repository> works-vs-scales && cd works-vs-scales",
	} {
		require.Empty(t, writesOnlyUnderMine(c), c)
	}
}

// Following a lesson verbatim must leave git status clean: every command a
// trainee is given writes under mine/, which git ignores.
func TestTraineeCommandsWriteOnlyUnderMine(t *testing.T) {
	n := 0
	for path, blocks := range traineeBlocks(t) {
		for _, b := range blocks {
			for _, c := range commands(b) {
				n++
				for _, wrong := range writesOnlyUnderMine(c) {
					t.Errorf("%s:%d (%s): %s\n\t%s", path, b.line, b.section, wrong, c)
				}
			}
		}
	}
	require.Greater(t, n, 30, "the lessons' commands were not found")
}

// Each lesson that measures tells the trainee how to compare their results
// with the committed ones, in one command.
func TestEveryMeasurementIsCompared(t *testing.T) {
	for path, blocks := range traineeBlocks(t) {
		var written, compared []string
		for _, b := range blocks {
			for _, c := range commands(b) {
				for _, m := range redirect.FindAllStringSubmatch(c, -1) {
					if strings.HasSuffix(m[1], ".bench") {
						written = append(written, m[1])
					}
				}
				if strings.Contains(c, "./cmd/report -compare") {
					compared = append(compared, c)
				}
			}
		}
		for _, w := range written {
			base := filepath.Base(w)
			want := "go run ./cmd/report -compare lessons/results/" + base + " " + w
			found := false
			for _, c := range compared {
				found = found || c == want
			}
			require.True(t, found, "%s writes %s but never gives: %s", path, w, want)
		}
	}
}

// benchFuncs returns the test and benchmark functions of the test package in
// dir, e.g. bench/nplusone, with the file of each.
func benchFuncs(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, dir, "*_test.go"))
	require.NoError(t, err)
	funcs := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		parsed, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range parsed.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name != "TestMain" &&
				(strings.HasPrefix(fn.Name.Name, "Test") || strings.HasPrefix(fn.Name.Name, "Benchmark")) {
				funcs[fn.Name.Name] = dir + "/" + filepath.Base(f)
			}
		}
	}
	require.NotEmpty(t, funcs, dir)
	return funcs
}

// benchPackage matches the test package a go test command runs: ./bench/name.
var benchPackage = regexp.MustCompile(`\./bench(?:/([a-z0-9]+))?(?:\s|$)`)

// topLevel returns the alternatives a -run or -bench pattern matches top-level
// names with, as go test splits it: at "|" and "/" outside brackets and
// parentheses, keeping the first element of each alternative.
func topLevel(pattern string) []string {
	var alts []string
	depth, class, start, first := 0, false, 0, true
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '\\':
			i++
		case c == '[':
			class = true
		case c == ']':
			class = false
		case c == '(' && !class:
			depth++
		case c == ')' && !class:
			depth--
		case (c == '/' || c == '|') && !class && depth == 0:
			if first {
				alts = append(alts, pattern[start:i])
			}
			first = c == '|'
			start = i + 1
		}
	}
	if first {
		alts = append(alts, pattern[start:])
	}
	return alts
}

// matched returns the functions with prefix whose names pattern selects.
func matched(t *testing.T, funcs map[string]string, prefix, pattern string) []string {
	t.Helper()
	var alts []*regexp.Regexp
	for _, a := range topLevel(pattern) {
		a = strings.ReplaceAll(a, "$impl", "naive") // lesson 8's loop variable
		re, err := regexp.Compile(a)
		require.NoError(t, err, pattern)
		alts = append(alts, re)
	}
	var names []string
	for name := range funcs {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, re := range alts {
			if re.MatchString(name) {
				names = append(names, name)
				break
			}
		}
	}
	return names
}

func TestTopLevelSplitsAsGoTestDoes(t *testing.T) {
	require.Equal(t, []string{"A", "B"}, topLevel("A/x|B/y"))
	require.Equal(t, []string{"GetUserOrders", "ListPosts"}, topLevel("GetUserOrders|ListPosts"))
	require.Equal(t, []string{"^(A|B)$"}, topLevel("^(A|B)$/c"))
	require.Equal(t, []string{"BenchmarkPay$"}, topLevel("BenchmarkPay$"))
}

// A lesson's go test commands run its own test package (bench/<name>, its
// folders' name), and their -run and -bench filters select something there:
// lesson 9's commands must not run lessons 8, 10 and 11, and a typo must not
// select nothing. An exercise's check selects its TestExerciseNN alone.
func TestLessonCommandsRunTheirOwnPackage(t *testing.T) {
	exercises := mustExercises(t)
	for _, e := range exercises {
		d, err := readDoc(filepath.Join(root, e.lesson))
		require.NoError(t, err)
		funcs := benchFuncs(t, e.bench())
		for _, b := range d.blocks {
			for _, c := range commands(b) {
				if !strings.Contains(c, "go test") {
					continue
				}
				m := benchPackage.FindStringSubmatch(c)
				if m == nil {
					continue
				}
				if m[1] != e.name {
					t.Errorf("%s:%d: runs ./bench/%s, not the lesson's ./%s\n\t%s", e.lesson, b.line, m[1], e.bench(), c)
					continue
				}
				for flag, prefix := range map[string]string{"run": "Test", "bench": "Benchmark"} {
					pattern, ok := flagValue(c, flag)
					if !ok || pattern == "^$" {
						continue
					}
					names := matched(t, funcs, prefix, pattern)
					if len(names) == 0 {
						t.Errorf("%s:%d: -%s %q selects nothing in %s\n\t%s", e.lesson, b.line, flag, pattern, e.bench(), c)
					}
					for _, name := range names {
						if strings.Contains(c, "-tags exercise") && !strings.HasPrefix(name, fmt.Sprintf("TestExercise%02d", e.n)) {
							t.Errorf("%s:%d: the check's -%s %q also selects %s (%s)\n\t%s", e.lesson, b.line, flag, pattern, name, funcs[name], c)
						}
					}
				}
			}
		}
	}
}

// A fuzz command a lesson gives, in a block or in the prose, stops by itself.
func TestFuzzCommandsStop(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(root, "lessons", "*.md"))
	require.NoError(t, err)
	fuzz := regexp.MustCompile("go test[^`\\n]*-fuzz [^`\\n]*")
	n := 0
	for _, p := range append(paths, filepath.Join(root, "README.md")) {
		text, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, c := range fuzz.FindAllString(string(text), -1) {
			n++
			if !strings.Contains(c, "-fuzztime") {
				t.Errorf("%s: a fuzz command without -fuzztime runs until it is stopped:\n\t%s", p, c)
			}
		}
	}
	require.GreaterOrEqual(t, n, 2, "lessons 2 and 8 give fuzz commands")
}
