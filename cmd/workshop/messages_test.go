package main

import (
	"fmt"
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

// serverInstruction matches what, in a lesson's text, tells a reader to
// change a server: ALTER SYSTEM, a restart or reload of it, its
// configuration files or settings, the tools that stop and start it. A
// restart named as an event ("a deadlock, a restart") is not one.
var serverInstruction = regexp.MustCompile(`(?i)alter\s+system|pg_reload_conf|pg_ctl|systemctl|pg_(create|drop)cluster|postgresql\.conf|pg_hba\.conf|` +
	`shared_preload_libraries|\b(restart|reload|reconfigure)\s+(it|postgres\w*|the\s+(server|database|cluster|replica)|your\s+(server|database))\b|` +
	`\b(then|and|please)\s+(restart|reload|reconfigure)\b|\bset\s+` + "`?" + `(max_connections|wal_level|max_wal_senders|recovery_min_apply_delay)\b`)

// toTheTrainer matches a paragraph that addresses the trainer or the DBA,
// or sends the reader to the trainer's guide.
var toTheTrainer = regexp.MustCompile(`TRAINER\.md|\bDBA\b|(?i:\btrainer)`)

// serverInstructions returns, as "path:line: paragraph", each paragraph of
// a lesson's Markdown (prose between blank lines, or a fenced block whole)
// that tells its reader to change a server and does not say it is the
// trainer's or the DBA's to do.
func serverInstructions(path, text string) []string {
	var found []string
	var para []string
	first, fenced := 0, false
	flush := func() {
		p := strings.Join(para, "\n")
		if serverInstruction.MatchString(p) && !toTheTrainer.MatchString(p) {
			found = append(found, fmt.Sprintf("%s:%d: %s", path, first, p))
		}
		para = nil
	}
	for i, line := range strings.Split(text, "\n") {
		fence := strings.HasPrefix(strings.TrimSpace(line), "```")
		switch {
		case fence && !fenced:
			flush()
			fenced = true
		case fence && fenced:
			fenced = false
			para = append(para, line)
			flush()
			continue
		case !fenced && strings.TrimSpace(line) == "":
			flush()
			continue
		}
		if len(para) == 0 {
			first = i + 1
		}
		para = append(para, line)
	}
	flush()
	return found
}

// TestNoLessonTellsATraineeToChangeTheServer: no paragraph of a lesson
// (lessons/*.md but the trainer's guide, which is the trainer's) tells its
// reader to ALTER SYSTEM, restart, reload or reconfigure a server without
// saying it is the trainer's or the DBA's to do: a trainee who obeys one on
// the room's shared server changes everyone's.
func TestNoLessonTellsATraineeToChangeTheServer(t *testing.T) {
	lessons, err := filepath.Glob(filepath.Join(root, "lessons", "*.md"))
	require.NoError(t, err)
	require.NotEmpty(t, lessons)
	var found []string
	for _, path := range lessons {
		if filepath.Base(path) == "TRAINER.md" {
			continue
		}
		text, err := os.ReadFile(path)
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, path)
		found = append(found, serverInstructions(rel, string(text))...)
	}
	require.Empty(t, found, "a lesson tells a trainee to change the server: say it is the trainer's or the DBA's to do (lessons/TRAINER.md, \"What a server needs\")")
}

// TestServerInstructionsFindsAnInstructionToATrainee: the scan finds an
// instruction to change the server, in prose and in a command, and lets pass
// a restart named as an event and an instruction addressed to the DBA.
func TestServerInstructionsFindsAnInstructionToATrainee(t *testing.T) {
	text := "Intro.\n\n" +
		"Load the extension: add it to\n`shared_preload_libraries`, then restart PostgreSQL.\n\n" +
		"When the connection is lost (a deadlock, a restart), the step has no samples.\n\n" +
		"```sh\npsql \"$WORKSHOP_DATABASE_URL\" -c \"ALTER SYSTEM SET max_connections = 300\"\n\n```\n\n" +
		"On a shared server its DBA adds it to `shared_preload_libraries` once.\n\n" +
		"Or, to go faster, set `max_connections` to 300.\n"
	found := serverInstructions("lesson.md", text)
	require.Len(t, found, 3, "%q", found)
	require.True(t, strings.HasPrefix(found[0], "lesson.md:3: Load the extension"), found[0])
	require.True(t, strings.HasPrefix(found[1], "lesson.md:8: ```sh"), found[1])
	require.True(t, strings.HasPrefix(found[2], "lesson.md:15: Or, to go faster"), found[2])
}
