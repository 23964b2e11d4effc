// Package partitioning holds the tests and benchmarks of lesson 19,
// Partitioning (lessons/19-partitioning.md): that the naive and scalable
// versions agree, the traps of partitions shown and counted, what retention
// and recent-data queries cost on each side, how fast the shop is seeded
// beside pgbench -i; and the check of the lesson's exercise, with the proof
// that it can fail.
package partitioning

import (
	"testing"

	"works-vs-scales/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
