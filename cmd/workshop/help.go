package main

import (
	"fmt"
	"strings"
)

// help prints every command of the workshop, with its arguments and what it
// does.
func (w *workshop) help() error {
	fmt.Fprintln(w.out, "go run ./cmd/workshop COMMAND, from the repository's root:")
	fmt.Fprintln(w.out)
	for _, v := range verbs() {
		fmt.Fprintf(w.out, "  %-28s %s\n", strings.TrimSpace(v.name+" "+v.args), v.what)
	}
	fmt.Fprintln(w.out, "\nWith no command, list. The verdicts are kept in "+progressFile+", which git ignores.")
	return nil
}
