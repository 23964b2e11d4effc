package main

import (
	"fmt"
)

// next prints the exercise to do next, and how to check it: the first not
// solved from exercise from on, or, when from is 0, after the one solved
// last; past the end, it starts again at the first.
func (w *workshop) next(from int) error {
	s, err := w.standing()
	if err != nil {
		return err
	}
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	e, ok := nextExercise(exercises, s, from)
	if !ok {
		fmt.Fprintln(w.out, "Every exercise is solved. Close with lessons/99-checklist.md: the questions to ask of your own code.")
		return nil
	}
	fmt.Fprintf(w.out, "Next: %s. Read %s, change %s/, then check it:\n\n", w.title(e), e.lesson, e.dir())
	fmt.Fprintf(w.out, "    go run ./cmd/workshop check %d\n\n", e.n)
	fmt.Fprintf(w.out, "Stuck? go run ./cmd/workshop hint %d\n", e.n)
	return nil
}

// nextExercise returns the first exercise not solved from exercise from on,
// or, when from is 0, after the exercise solved last (by the time of its
// check; the highest one when no time was recorded), wrapping round to the
// first; false when every exercise is solved.
func nextExercise(exercises []exercise, s standing, from int) (exercise, bool) {
	start := 0
	if from > 0 {
		for i, e := range exercises {
			if e.n >= from {
				start = i
				break
			}
		}
	} else {
		last := -1
		for i, e := range exercises {
			if !s.solved(e.n) {
				continue
			}
			if last < 0 || !s.verdicts[e.n].at.Before(s.verdicts[exercises[last].n].at) {
				last = i
			}
		}
		start = last + 1
	}
	for k := range exercises {
		e := exercises[(start+k)%len(exercises)]
		if !s.solved(e.n) {
			return e, true
		}
	}
	return exercise{}, false
}
