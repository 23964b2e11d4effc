// Workshop shows a trainee where they are in the workshop, as rustlings does:
// which exercises are solved, what to do next, a check with a verdict in the
// lesson's words, and hints in stages that never give the answer.
//
// Usage, from the repository's root:
//
//	go run ./cmd/workshop            # every lesson's exercise: solved or not yet
//	go run ./cmd/workshop check N    # run exercise N's check, and say what it found
//	go run ./cmd/workshop next       # the first exercise not yet solved
//	go run ./cmd/workshop hint N     # what the lesson says; hint N 2 gives a nudge
//	go run ./cmd/workshop watch      # check the next exercise again each time you save it
//	go run ./cmd/workshop template   # the names of the seeded template databases
//	go run ./cmd/workshop durations  # the trainer's table of durations
//	go run ./cmd/workshop time       # time every lesson's commands (maintainer)
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
	w := &workshop{root: ".", state: progressFile, out: os.Stdout, run: execRunner{}, now: time.Now}
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
type execRunner struct{}

func (execRunner) run(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
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
}

// statePath returns where the progress file is.
func (w *workshop) statePath() string {
	if filepath.IsAbs(w.state) {
		return w.state
	}
	return filepath.Join(w.root, w.state)
}

// errUsage is returned for a command line the workshop does not understand.
var errUsage = errors.New(`usage: go run ./cmd/workshop [list | check N | next | hint N [2] | watch | template | durations [-w] | time [-count N] [-note TEXT]]`)

// errNotSolved is returned by check when the exercise's check did not pass,
// so the command exits 1 as go test does.
var errNotSolved = errors.New("not solved yet")

func (w *workshop) main(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return w.list()
	}
	number := func() (int, error) {
		if len(args) < 2 {
			return 0, fmt.Errorf("%s needs an exercise number: %w", args[0], errUsage)
		}
		n, err := strconv.Atoi(strings.TrimLeft(args[1], "0"))
		if err != nil {
			return 0, fmt.Errorf("exercise %s is not a number: %w", shop.Quote(args[1]), errUsage)
		}
		return n, nil
	}
	switch args[0] {
	case "list":
		return w.list()
	case "next":
		return w.next()
	case "check":
		n, err := number()
		if err != nil {
			return err
		}
		return w.check(ctx, n)
	case "hint":
		n, err := number()
		if err != nil {
			return err
		}
		stage := 1
		if len(args) > 2 {
			if stage, err = strconv.Atoi(args[2]); err != nil || stage < 1 {
				return fmt.Errorf("hint stage %s is not 1 or 2: %w", shop.Quote(args[2]), errUsage)
			}
		}
		return w.hint(n, stage)
	case "watch":
		ticker := time.NewTicker(watchEvery)
		defer ticker.Stop()
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		return w.watch(ctx, ticker.C)
	case "template":
		return w.template()
	case "durations":
		return w.durations(args[1:])
	case "time":
		return w.timeCommands(ctx, args[1:])
	}
	return fmt.Errorf("unknown command %s: %w", shop.Quote(args[0]), errUsage)
}

// fields returns the fields of a TSV line.
func fields(line string) []string { return strings.Split(line, "\t") }

// trimCR drops the carriage returns a file edited on Windows may carry.
func trimCR(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r"), nil) }
