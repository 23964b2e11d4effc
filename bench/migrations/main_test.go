// Package migrations holds the tests and benchmarks of lesson 20, Changing
// the schema under traffic (lessons/20-migrations.md): that the naive and
// scalable migrations leave the same schema and data, what each does to the
// queries that arrive while it runs, and the check of the lesson's exercise,
// with the proof that it can fail.
package migrations

import (
	"os"
	"testing"

	"works-vs-scales/internal/pgtest"
)

// TestMain runs the tests and benchmarks; in a child that a benchmark
// started with serviceEnv set, it serves the benchmark's requests instead
// (see startService).
func TestMain(m *testing.M) {
	if url := os.Getenv(serviceEnv); url != "" {
		os.Exit(runService(url))
	}
	pgtest.Main(m)
}
