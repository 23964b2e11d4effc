// Lessons keeps the generated parts of lessons/*.md and README.md true. From
// the raw benchmark output committed in lessons/results (*.bench) it makes each
// run's tables (NAME.md), a log-log chart per benchmark (NAME-BENCHMARK.svg)
// and the README's headline table (headline.md); then it renders the marked
// parts of the lessons: code blocks copied from the Go declarations they name,
// and those tables. Nothing between a marker and its end is typed by hand.
//
// A lesson marks a generated part with an HTML comment, closed by <!-- end -->:
// a declaration's source, a text file a command wrote (a plan, a profile), or
// a markdown file inserted as is:
//
//	<!-- code: naive/nplusone/orders.go GetUserOrders -->
//	<!-- include: lessons/results/03-explain.txt -->
//	<!-- insert: lessons/results/01-n-plus-one.md -->
//
// A figure quoted in prose is marked inline, on one line, and rendered from
// the committed results the same way (see figure for what it can name): the
// median with its range, a ratio (only where the ranges differ), a growth
// or a configuration line, so that no number in a sentence is typed by hand:
//
//	naive takes <!-- figure: lessons/results/05-nested-loops.bench FindDuplicates impl=naive users=10000 sec/op -->2.39 s<!-- end -->
//	<!-- figure: lessons/results/05-nested-loops.bench FindDuplicates impl=naive vs=scalable users=10000 sec/op -->1,349×<!-- end -->
//	<!-- figure: lessons/results/01-n-plus-one.bench config rtt-measured -->0.022ms<!-- end -->
//
// A figure a results file does not have fails the run and the test, and a
// figure that no longer matches its file is stale, as a table is. The test
// also fails on a ratio typed by hand ("118×") in a lesson's prose or the
// README, outside code and generated parts: quote it with a figure.
//
// Usage, from the repository's root:
//
//	go run ./cmd/lessons          # rewrite the lessons
//	go run ./cmd/lessons -check   # only report stale ones (as its test does)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"works-vs-scales/internal/report"
)

func main() {
	check := flag.Bool("check", false, "report stale lessons instead of rewriting them")
	flag.Parse()
	stale, err := refresh(".", !*check)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lessons:", err)
		os.Exit(1)
	}
	for _, path := range stale {
		if *check {
			fmt.Fprintf(os.Stderr, "lessons: %s is stale: run go run ./cmd/lessons\n", path)
		} else {
			fmt.Println("updated", path)
		}
	}
	if *check && len(stale) > 0 {
		os.Exit(1)
	}
}

// refresh makes the results' tables and charts, then renders every lesson and
// the README, and returns the files whose text changed, writing them back when
// write is set.
func refresh(root string, write bool) ([]string, error) {
	artifacts, err := resultArtifacts(root)
	if err != nil {
		return nil, err
	}
	made := make(map[string][]byte, len(artifacts))
	for _, a := range artifacts {
		made[a.path] = a.text
	}
	paths, err := filepath.Glob(filepath.Join(root, "lessons", "*.md"))
	if err != nil {
		return nil, err
	}
	paths = append(paths, filepath.Join(root, "README.md"))
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		rendered, err := render(root, string(text), made)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		artifacts = append(artifacts, artifact{path, []byte(rendered)})
	}

	var stale []string
	for _, a := range artifacts {
		old, err := os.ReadFile(a.path)
		if err == nil && bytes.Equal(old, a.text) {
			continue
		}
		stale = append(stale, a.path)
		if write {
			if err := os.WriteFile(a.path, a.text, 0o644); err != nil {
				return nil, err
			}
		}
	}
	return stale, nil
}

// generated matches a marker, what it generated last time, and its end.
var generated = regexp.MustCompile(`(?s)<!-- (code|include|insert): ([^>]*?) -->\n.*?<!-- end -->`)

// render returns the lesson with every generated part made anew. Files in made
// are read from there rather than from disk: they are about to be written.
func render(root, lesson string, made map[string][]byte) (string, error) {
	var firstErr error
	out := generated.ReplaceAllStringFunc(lesson, func(part string) string {
		m := generated.FindStringSubmatch(part)
		kind, args := m[1], strings.Fields(m[2])
		var body, lang string
		var err error
		switch kind {
		case "code":
			lang = "go"
			body, err = declaration(root, args)
		case "include", "insert":
			lang = "text"
			if len(args) > 0 && strings.HasSuffix(args[0], ".sql") { // a migration (lesson 20)
				lang = "sql"
			}
			body, err = include(root, args, made)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s %s: %w", kind, m[2], err)
			}
			return part
		}
		body = strings.TrimRight(body, "\n")
		if kind == "insert" { // markdown, as it is
			return fmt.Sprintf("<!-- %s: %s -->\n%s\n<!-- end -->", kind, m[2], body)
		}
		return fmt.Sprintf("<!-- %s: %s -->\n```%s\n%s\n```\n<!-- end -->", kind, m[2], lang, body)
	})
	results := make(map[string]*report.Report)
	out = figureMarker.ReplaceAllStringFunc(out, func(part string) string {
		m := figureMarker.FindStringSubmatch(part)
		value, err := figure(root, strings.Fields(m[1]), results)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("figure %s: %w", m[1], err)
			}
			return part
		}
		return fmt.Sprintf("<!-- figure: %s -->%s<!-- end -->", m[1], value)
	})
	return out, firstErr
}

// declaration returns the source of the named top-level declaration in a Go
// file (Type.Method for a method), with its doc comment: args are the file and
// the name.
func declaration(root string, args []string) (string, error) {
	if len(args) != 2 {
		return "", fmt.Errorf("want a file and a declaration name, got %q", args)
	}
	path, name := filepath.Join(root, args[0]), args[1]
	src, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return "", err
	}
	for _, decl := range file.Decls {
		var doc *ast.CommentGroup
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if funcName(d) != name {
				continue
			}
			doc = d.Doc
		case *ast.GenDecl:
			if !declares(d, name) {
				continue
			}
			doc = d.Doc
		}
		start := decl.Pos()
		if doc != nil {
			start = doc.Pos()
		}
		return string(src[fset.Position(start).Offset:fset.Position(decl.End()).Offset]), nil
	}
	return "", fmt.Errorf("no declaration %s in %s", name, args[0])
}

// funcName is a function's name, or Type.Method for a method.
func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	recv := d.Recv.List[0].Type
	if star, ok := recv.(*ast.StarExpr); ok {
		recv = star.X
	}
	if ident, ok := recv.(*ast.Ident); ok {
		return ident.Name + "." + d.Name.Name
	}
	return d.Name.Name
}

func declares(d *ast.GenDecl, name string) bool {
	for _, spec := range d.Specs {
		switch s := spec.(type) {
		case *ast.TypeSpec:
			if s.Name.Name == name {
				return true
			}
		case *ast.ValueSpec:
			for _, n := range s.Names {
				if n.Name == name {
					return true
				}
			}
		}
	}
	return false
}

// include returns a text file of the repository, e.g. a plan or a profile a
// command wrote to lessons/results, or a table made from results.
func include(root string, args []string, made map[string][]byte) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("want one file, got %q", args)
	}
	path := filepath.Join(root, args[0])
	if text, ok := made[path]; ok {
		return string(text), nil
	}
	text, err := os.ReadFile(path)
	return string(text), err
}
