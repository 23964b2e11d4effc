package main

import (
	"fmt"
	"path/filepath"
)

// title returns lesson e's short title, "N. Name", or its file when the
// lesson cannot be read.
func (w *workshop) title(e exercise) string {
	d, err := readDoc(filepath.Join(w.root, e.lesson))
	if err != nil || d.title == "" {
		return e.lesson
	}
	return d.shortTitle()
}

// list prints every exercise with its verdict, and the next step.
func (w *workshop) list() error {
	progress, err := w.progress()
	if err != nil {
		return err
	}
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	fmt.Fprintln(w.out, "works-vs-scales: your exercises (verdicts of your last checks, kept in "+progressFile+")")
	fmt.Fprintln(w.out)
	done := 0
	for _, e := range exercises {
		status := "not yet"
		if progress[e.n] {
			status = "solved"
			done++
		}
		needs := "needs PostgreSQL"
		if !e.needsDB {
			needs = "pure Go: needs no database"
		}
		fmt.Fprintf(w.out, "  %-7s  %-24s %-28s %s\n", status, w.title(e), e.dir()+"/", needs)
	}
	fmt.Fprintf(w.out, "\n%d of %d solved.\n", done, len(exercises))
	return w.next()
}

// next prints the first exercise not yet solved, and how to check it.
func (w *workshop) next() error {
	progress, err := w.progress()
	if err != nil {
		return err
	}
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	for _, e := range exercises {
		if progress[e.n] {
			continue
		}
		fmt.Fprintf(w.out, "Next: %s. Read %s, change %s/, then check it:\n\n", w.title(e), e.lesson, e.dir())
		fmt.Fprintf(w.out, "    go run ./cmd/workshop check %d\n\n", e.n)
		fmt.Fprintf(w.out, "Stuck? go run ./cmd/workshop hint %d\n", e.n)
		return nil
	}
	fmt.Fprintln(w.out, "Every exercise is solved. Close with lessons/99-checklist.md: the questions to ask of your own code.")
	return nil
}
