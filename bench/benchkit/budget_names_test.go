package benchkit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBudgetTestsAreLeftOutOfPeakChildren: every test of bench that runs
// PeakConns itself (through RequireWithinBudget, RequireCheckWithinItsTurn
// or FailInPeakChild) has a name budgetTests matches, so that a child of
// PeakConns leaves it out instead of running it again.
func TestBudgetTestsAreLeftOutOfPeakChildren(t *testing.T) {
	left := regexp.MustCompile(budgetTests)
	callers := map[string]bool{"RequireWithinBudget": true, "RequireCheckWithinItsTurn": true, "FailInPeakChild": true}
	found := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !callers[sel.Sel.Name] {
					return true
				}
				found++
				if !left.MatchString(fn.Name.Name) {
					t.Errorf("%s: %s calls %s, but budgetTests does not match its name: a child of PeakConns would run it", path, fn.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 10 {
		t.Fatalf("found %d tests that run PeakConns under bench/, want the budget tests of every lesson that has one", found)
	}
}
