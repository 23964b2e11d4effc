// Workshop shows a trainee where they are in the workshop, as rustlings does:
// which exercises are solved, what to do next, a check with a verdict in the
// lesson's words, and hints in stages that never give the answer.
//
// Usage, from the repository's root: go run ./cmd/workshop help lists every
// command (the verbs in main.go); with none, it lists the exercises.
//
// The exercises are found in the tree: lessons/NN-slug.md, and the folders
// named after the slug without hyphens (exercises/nplusone, bench/nplusone).
// A check runs go test -tags exercise -run '^TestExerciseNN$' ./bench/<name>,
// its lesson's test package alone, with -race when the lesson's command for it
// has -race; a check that panics shows the panic under its verdict. What
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
	"strconv"
	"strings"
	"time"

	"works-vs-scales/shop"
)

func main() {
	w := &workshop{root: ".", state: progressFile, out: os.Stdout, run: execRunner{live: os.Stdout}, now: time.Now, tell: tellRoom}
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
type execRunner struct {
	// live, if not nil, is shown at once the lines a command prints while it
	// waits (liveLine): a check that waits for the room's turn says so then,
	// not at its end.
	live io.Writer
}

func (r execRunner) run(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if r.live == nil {
		return cmd.CombinedOutput()
	}
	var out bytes.Buffer
	echo := &lineEcho{w: r.live}
	cmd.Stdout = io.MultiWriter(&out, echo)
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	return out.Bytes(), err
}

// liveLine says whether a line a check prints is for the trainee at once: the
// harness's word that the check waits (for the room's turn, say).
func liveLine(line string) bool {
	return strings.HasPrefix(line, "pgtest: ") && strings.Contains(line, "waiting for")
}

// lineEcho writes to w each whole line written to it that liveLine keeps.
type lineEcho struct {
	w       io.Writer
	partial []byte
}

func (e *lineEcho) Write(p []byte) (int, error) {
	e.partial = append(e.partial, p...)
	for {
		i := bytes.IndexByte(e.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := string(e.partial[:i]); liveLine(line) {
			fmt.Fprintln(e.w, line)
		}
		e.partial = e.partial[i+1:]
	}
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
	// tell writes a check's verdict to the room's table on the shared
	// server; nil writes nothing (the tests' workshops)
	tell func(ctx context.Context, n int, v verdict) error
}

// statePath returns where the progress file is.
func (w *workshop) statePath() string {
	if filepath.IsAbs(w.state) {
		return w.state
	}
	return filepath.Join(w.root, w.state)
}

// errUsage is returned for a command line the workshop does not understand.
var errUsage = errors.New("usage: go run ./cmd/workshop COMMAND (go run ./cmd/workshop help lists them)")

// errNotSolved is returned by check when the exercise's check did not pass,
// so the command exits 1 as go test does.
var errNotSolved = errors.New("not solved yet")

// A verb is one command of the workshop: its name, its arguments, what it
// does in one line, and how it runs.
type verb struct {
	name, args, what string
	run              func(w *workshop, ctx context.Context, args []string) error
}

// verbs returns the workshop's commands, in the order help lists them.
func verbs() []verb {
	return []verb{
		{"list", "", "every exercise: solved, not yet, or stale (its files changed since its check); the default", func(w *workshop, _ context.Context, _ []string) error { return w.list() }},
		{"check", "N", "run exercise N's check (with -race where its lesson says so) and say what it found", func(w *workshop, ctx context.Context, args []string) error {
			n, err := number("check", args)
			if err != nil {
				return err
			}
			return w.check(ctx, n)
		}},
		{"next", "[-from N]", "the exercise to do next: the first not solved after the one you solved last, or from N on", func(w *workshop, _ context.Context, args []string) error {
			from := 0
			if len(args) > 0 {
				if args[0] != "-from" {
					return fmt.Errorf("next takes -from N, not %s: %w", shop.Quote(args[0]), errUsage)
				}
				n, err := number("next -from", args[1:])
				if err != nil {
					return err
				}
				from = n
			}
			return w.next(from)
		}},
		{"hint", "N [2]", "what the lesson says about exercise N; hint N 2 gives a nudge, never the answer", func(w *workshop, _ context.Context, args []string) error {
			n, err := number("hint", args)
			if err != nil {
				return err
			}
			stage := 1
			if len(args) > 1 {
				if stage, err = strconv.Atoi(args[1]); err != nil || stage < 1 {
					return fmt.Errorf("hint stage %s is not 1 or 2: %w", shop.Quote(args[1]), errUsage)
				}
			}
			return w.hint(n, stage)
		}},
		{"watch", "", "check the next exercise again each time you save one of its files", func(w *workshop, ctx context.Context, _ []string) error {
			ticker := time.NewTicker(watchEvery)
			defer ticker.Stop()
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
			defer stop()
			return w.watch(ctx, ticker.C)
		}},
		{"template", "", "the names of the seeded template databases, to look at one with psql", func(w *workshop, _ context.Context, _ []string) error { return w.template() }},
		{"durations", "[-w]", "the trainer's table of how long each lesson's commands took", func(w *workshop, _ context.Context, args []string) error { return w.durations(args) }},
		{"time", "[-count N] [-note TEXT]", "time every lesson's commands (maintainer)", func(w *workshop, ctx context.Context, args []string) error { return w.timeCommands(ctx, args) }},
		{"peaks", "[-lessons N,M] [-where TEXT] [-w]", "measure each lesson's peak of connections with no budget, for doctor (maintainer)", func(w *workshop, ctx context.Context, args []string) error { return w.peaks(ctx, args) }},
		{"doctor", "[-trainees N]", "the trainer's pre-flight: per lesson, what the room lacks and how to fix it", func(w *workshop, ctx context.Context, args []string) error { return w.doctor(ctx, args) }},
		{"room", "[-serve ADDR]", "the trainer's view: every trainee's verdict of each exercise, and when; -serve as a web page", func(w *workshop, ctx context.Context, args []string) error {
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
			defer stop()
			return w.room(ctx, args)
		}},
		{"help", "", "this list", func(w *workshop, _ context.Context, _ []string) error { return w.help() }},
	}
}

// number reads the exercise number that is args[0].
func number(command string, args []string) (int, error) {
	if len(args) < 1 {
		return 0, fmt.Errorf("%s needs an exercise number: %w", command, errUsage)
	}
	n, err := strconv.Atoi(strings.TrimLeft(args[0], "0"))
	if err != nil {
		return 0, fmt.Errorf("exercise %s is not a number: %w", shop.Quote(args[0]), errUsage)
	}
	return n, nil
}

func (w *workshop) main(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return w.list()
	}
	for _, v := range verbs() {
		if v.name == args[0] {
			return v.run(w, ctx, args[1:])
		}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		return w.help()
	}
	return fmt.Errorf("unknown command %s: %w", shop.Quote(args[0]), errUsage)
}

// fields returns the fields of a TSV line.
func fields(line string) []string { return strings.Split(line, "\t") }

// trimCR drops the carriage returns a file edited on Windows may carry.
func trimCR(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r"), nil) }
