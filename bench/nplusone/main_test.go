// Package nplusone holds the tests and benchmarks of lesson 1, N+1 queries
// (lessons/01-n-plus-one.md): that the naive and scalable versions agree, that
// they cost what the lesson says, and how each grows; and the check of the
// lesson's exercise, with the proof that it can fail.
package nplusone

import (
	"testing"

	"works-vs-scales/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
