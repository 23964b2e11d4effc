// Package benchkit holds what the lessons' tests and benchmarks (bench/<lesson>)
// share: the sizes a benchmark grows through, how it names and reports its
// runs, and a few fixtures several lessons use (a held lock and the sessions
// waiting for it, callers released together, a payment gateway, pgbench, the
// test binary run again as a child process, and what a check says about the
// race detector).
//
// Each lesson's test package imports it beside the harness (internal/pgtest)
// and its two sides, as naive and scalable; it holds nothing of any lesson.
package benchkit

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// Large reports whether WORKSHOP_LARGE asks for the largest sizes (1, or 2
// for a further size in lesson 19): more data to seed once, and minutes
// rather than seconds per run.
func Large() bool { return LargeLevel() >= 1 }

// LargeLevel is how far WORKSHOP_LARGE asks the benchmarks to grow: 0 when it
// is unset (or says anything else), 1 for the largest sizes of every lesson,
// 2 for those and a further size where a lesson has one (lesson 19's 30M
// orders, most of an hour to seed on 2 cores).
func LargeLevel() int {
	switch os.Getenv(workshopenv.Large) {
	case "1":
		return 1
	case "2":
		return 2
	}
	return 0
}

// Scale is the shop a benchmark over one shop runs on: the small one, or the
// large one when asked.
func Scale() shop.Scale {
	if Large() {
		return shop.Large
	}
	return shop.Small
}

// Scales are the shops a benchmark over growing tables runs on, up to Scale;
// only the smallest with -short.
func Scales() []shop.Scale {
	scales := shop.Ladder(Scale())
	if testing.Short() {
		return scales[:1]
	}
	return scales
}

// Sizes returns the sizes a benchmark runs at: from 10 up by factors of 10 to
// top, or only the smallest with -short, so a quick run still exercises every
// benchmark.
func Sizes(top int) []int { return Ladder(10, top) }

// Ladder returns from, then up by factors of 10 to top; only from with -short.
func Ladder(from, top int) []int {
	var steps []int
	for n := from; n <= top; n *= 10 {
		steps = append(steps, n)
	}
	if testing.Short() {
		return steps[:1]
	}
	return steps
}

// Name is a sub-benchmark's or sub-test's name, key=value, so that benchstat
// can put one key's values side by side (-col /impl).
func Name(key string, value any) string { return fmt.Sprintf("%s=%v", key, value) }

// ReportCounts reports what the database did per iteration of b's loop. Its
// round trips include the prepares (pgx prepares a SQL text it has not seen
// on the connection first, a round trip of its own), also reported alone: a
// statement whose SQL differs every time costs two round trips, not one.
func ReportCounts(b *testing.B, counts *pgtest.Counts) {
	b.ReportMetric(float64(counts.Statements())/float64(b.N), "queries/op")
	b.ReportMetric(float64(counts.RoundTrips()+counts.Prepares())/float64(b.N), "round-trips/op")
	b.ReportMetric(float64(counts.Prepares())/float64(b.N), "prepares/op")
	b.ReportMetric(float64(counts.Rows())/float64(b.N), "rows/op")
}

// ReportLatencies reports the median and the 99th percentile of what callers
// waited, in milliseconds.
func ReportLatencies(b *testing.B, latencies []time.Duration) {
	sorted := slices.Sorted(slices.Values(latencies))
	if len(sorted) == 0 {
		b.Fatal("no latencies to report: nothing was measured")
	}
	for _, p := range []int{50, 99} {
		b.ReportMetric(float64(sorted[(len(sorted)-1)*p/100])/float64(time.Millisecond), fmt.Sprintf("p%d-ms", p))
	}
}

// HangBound only bounds a hang in the tests that must not depend on the
// machine's speed: a call that should succeed gets this long, so a loaded
// machine cannot fail it, and a call stuck by mistake still ends.
const HangBound = 30 * time.Second

// BadTimeouts are timeouts nothing could work with (a call that fails at
// once, or never ends), with how a constructor's error names each.
var BadTimeouts = []struct {
	Timeout time.Duration
	Names   string
}{
	{0, "timeout 0s"},
	{-1, "timeout -1ns"},
	{math.MinInt64, "timeout -2562047h"},
	{math.MaxInt64, "timeout 2562047h"},
}

// RefuseNoDatabase checks constructors that take only a database, by name:
// each accepts a sound one (a pool on a server never dialled) and refuses
// nil, when it is called, with an error wrapping [shop.ErrInvalidConfig] that
// says "no database", rather than a value that panics at its first call.
func RefuseNoDatabase(t *testing.T, constructors map[string]func(*pgxpool.Pool) error) {
	t.Helper()
	db := NeverDialled(t)
	for name, construct := range constructors {
		require.NoError(t, construct(db), "%s: a sound configuration", name)
		err := construct(nil)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, "%s: no database", name)
		assert.Contains(t, err.Error(), "no database", "%s: the error names the setting", name)
	}
}

// NeverDialled returns a pool on a server that is never dialled: enough for a
// constructor, which must not connect.
func NeverDialled(t *testing.T) *pgxpool.Pool {
	db, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/never-dialled")
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return db
}
