// Package caching holds the tests and benchmarks of lesson 6, Caching
// (lessons/06-caching.md): that the naive and scalable versions agree, that
// they cost what the lesson says, and how each grows; and the check of the
// lesson's exercise, with the proof that it can fail.
package caching

import (
	"testing"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/redistest"
)

func TestMain(m *testing.M) { pgtest.Main(m, redistest.Close) }
