package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// serverChange matches words that tell someone to change a server: a trainee
// who obeys one on a shared server changes everyone's.
var serverChange = regexp.MustCompile(`(?i)alter system|pg_ctl|\brestart\b|postgresql\.conf|pg_hba\.conf|shared_preload_libraries`)

// TestNoMessageTellsATraineeToChangeTheServer: every string in the
// workshop's Go code that speaks of changing a server (ALTER SYSTEM, a
// restart, pg_ctl, its configuration files) says it is the trainer's or the
// DBA's to do, and where (lessons/TRAINER.md); SQL the harness itself runs,
// on a server of its own, is left out.
func TestNoMessageTellsATraineeToChangeTheServer(t *testing.T) {
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "mine" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var s string
			switch n := n.(type) {
			case *ast.BinaryExpr: // a message made of parts: all of them, the names of constants included
				if n.Op != token.ADD {
					return true
				}
				s = string(src[fset.Position(n.Pos()).Offset:fset.Position(n.End()).Offset])
				if !serverChange.MatchString(s) {
					return true
				}
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					return true
				}
				if s, err = strconv.Unquote(n.Value); err != nil || !serverChange.MatchString(s) {
					return true
				}
			default:
				return true
			}
			if sql := strings.ToUpper(strings.TrimLeft(strings.TrimSpace(s), "\"`")); strings.HasPrefix(sql, "ALTER SYSTEM SET") || strings.HasPrefix(sql, "SELECT") ||
				len(strings.Fields(s)) < 4 || strings.HasPrefix(strings.TrimSpace(s), "#!") || path == filepath.Join(root, "cmd", "workshop", "messages_test.go") {
				return true // SQL, or a setting, the harness runs on a server of its own; no sentence
			}
			checked++
			rel, _ := filepath.Rel(root, path)
			require.Regexp(t, `TRAINER\.md|DBA|trainer`, s, "%s: a message about changing the server says it is the trainer's to do:\n%s", rel, s)
			return false
		})
		return nil
	})
	require.NoError(t, err)
	t.Logf("%d messages about changing a server, each addressed to the trainer or the DBA", checked)
}
