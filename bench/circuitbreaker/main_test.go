// Package circuitbreaker holds the tests and benchmarks of lesson 10, Circuit
// breaker (lessons/10-circuit-breaker.md): that the naive and scalable versions
// agree, that they cost what the lesson says, and how each grows; and the check
// of the lesson's exercise, with the proof that it can fail.
package circuitbreaker

import (
	"testing"

	"works-vs-scales/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
