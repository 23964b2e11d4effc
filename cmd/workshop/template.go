package main

import (
	"fmt"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// template prints the names of the template databases the harness seeds, and
// how to look at one with psql.
func (w *workshop) template() error {
	fmt.Fprintln(w.out, "The harness seeds each size of the shop into a template database named:")
	fmt.Fprintln(w.out)
	for _, s := range []shop.Scale{shop.Small, shop.Large} {
		fmt.Fprintf(w.out, "  %s\n", pgtest.TemplateName(s))
	}
	fmt.Fprintln(w.out, "\n(the second only after a run with WORKSHOP_LARGE=1). To look around, copy one:")
	fmt.Fprintf(w.out, "\n  createdb -T %s shop && psql shop\n", pgtest.TemplateName(shop.Small))
	fmt.Fprintln(w.out, "\nThe templates on your server: psql -l | grep _tpl_")
	return nil
}
