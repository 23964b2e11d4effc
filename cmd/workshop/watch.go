package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// watchEvery is how often watch looks at the exercise's files.
const watchEvery = 500 * time.Millisecond

// watch checks the first exercise not yet solved, then again each time one
// of its files changes, and moves on to the next when it passes; it returns
// when every exercise is solved or ctx is done. It looks at the files at each
// tick: polling a folder of one or two files costs nothing, and needs no
// dependency.
func (w *workshop) watch(ctx context.Context, tick <-chan time.Time) error {
	last := "never checked"
	current := 0
	for {
		s, err := w.standing()
		if err != nil {
			return err
		}
		exercises, err := w.exercises()
		if err != nil {
			return err
		}
		e, ok := nextExercise(exercises, s, 0)
		if !ok {
			fmt.Fprintln(w.out, "Every exercise is solved. Close with lessons/99-checklist.md.")
			return nil
		}
		if e.n != current {
			current, last = e.n, "never checked"
			fmt.Fprintf(w.out, "Watching %s/ (exercise %d): save a file to check it again; Ctrl-C to stop.\n\n", e.dir(), e.n)
		}
		if sig := signature(filepath.Join(w.root, e.dir())); sig != last {
			last = sig
			if err := w.check(ctx, e.n); err != nil && !errors.Is(err, errNotSolved) {
				return err
			}
			fmt.Fprintln(w.out)
			continue // solved: go on to the next one at once
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// signature returns the names, sizes and modification times of the Go files
// in dir: it changes when one is saved.
func signature(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	var b strings.Builder
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return b.String()
}
