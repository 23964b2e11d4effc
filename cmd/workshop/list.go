package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
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

// list prints every exercise with its verdict, and the next step. A verdict
// given to other files than the exercise's files now is stale: it says so,
// and is not counted.
func (w *workshop) list() error {
	s, err := w.standing()
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
	var stale []string
	for _, e := range exercises {
		status := "not yet"
		switch {
		case s.stale[e.n]:
			status = "stale"
			stale = append(stale, strconv.Itoa(e.n))
		case s.solved(e.n):
			status = "solved"
			done++
		}
		needs := "needs PostgreSQL"
		if !e.needsDB {
			needs = "pure Go: needs no database"
		}
		line := fmt.Sprintf("  %-7s  %-24s %-28s %s", status, w.title(e), e.dir()+"/", needs)
		if v := s.verdicts[e.n]; s.stale[e.n] {
			line += fmt.Sprintf(" (last check: %s%s; its files changed since)", strings.ReplaceAll(v.word(), "-", " "), when(v))
		}
		fmt.Fprintln(w.out, line)
	}
	fmt.Fprintf(w.out, "\n%d of %d solved.\n", done, len(exercises))
	if len(stale) > 0 {
		fmt.Fprintf(w.out, "Stale: the verdict was given to other files than yours now; check again (go run ./cmd/workshop check N): %s.\n", strings.Join(stale, ", "))
	}
	fmt.Fprintln(w.out)
	return w.next(0)
}

// when says when a verdict was given, if it was recorded.
func when(v verdict) string {
	if v.at.IsZero() {
		return ""
	}
	return ", " + v.at.Local().Format("Mon 15:04")
}
