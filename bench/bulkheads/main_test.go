// Package bulkheads holds the tests and benchmarks of lesson 11, Bulkheads
// (lessons/11-bulkheads.md): that the naive and scalable versions agree, that
// they cost what the lesson says, and how each grows; and the check of the
// lesson's exercise, with the proof that it can fail.
package bulkheads

import (
	"testing"

	"works-vs-scales/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
