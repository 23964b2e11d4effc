package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/workshopenv"
)

// doctorLine returns the line of doctor's output that starts with prefix.
func doctorLine(t *testing.T, text, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no line %q in:\n%s", prefix, text)
	return ""
}

// TestDoctorSaysPerLessonWhatIsMissing: with no server, no Redis and a race
// build still to compile, doctor names each need as missing with the
// trainer's fix, and each lesson lists exactly the needs it has: the
// database for those whose tests use the harness, Redis for 6, PgBouncer for 13, the race
// build for the checks that run under -race.
func TestDoctorSaysPerLessonWhatIsMissing(t *testing.T) {
	t.Setenv(workshopenv.DatabaseURL, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	t.Setenv(workshopenv.RedisURL, "")
	t.Setenv(workshopenv.ReplicaURL, "")
	t.Setenv(workshopenv.MaxConns, "")
	r := &fakeRunner{output: "github.com/jackc/pgx/v5/pgxpool\nworks-vs-scales/shop\n"}
	w, out := newWorkshop(t, r)
	err := w.main(context.Background(), []string{"doctor", "-trainees", "10"})
	require.ErrorContains(t, err, "of the room's needs are missing")
	text := out.String()
	require.Contains(t, doctorLine(t, text, "  MISSING  PostgreSQL"), "127.0.0.1:1")
	require.Contains(t, text, "fix: start the room's PostgreSQL")
	require.Contains(t, text, "MISSING  Redis")
	require.Contains(t, text, "fix: run go test -race -count=1 -run '^$' ./...")
	require.Contains(t, text, "fix: run go test -count=1 -run '^$' ./...", "both caches are asked for")
	require.Len(t, r.ran, 2, "go list, with -race and without")
	for _, e := range mustExercises(t) {
		line := doctorLine(t, text, "  "+w.title(e)+" ")
		require.Contains(t, line, "missing: ", e.lesson)
		require.Equal(t, e.race, strings.Contains(line, "race-build cache"), "%s: %s", e.lesson, line)
		require.Equal(t, e.n == 6, strings.Contains(line, "Redis"), "%s: %s", e.lesson, line)
		require.Equal(t, e.n == 13, slices.Contains(w.needs(e), needPgBouncer), e.lesson)
		// Lesson 5's tests ask the harness for nothing: its TestMain's
		// pgtest.Main connects only for a test that asks.
		require.Equal(t, e.n != 5, slices.Contains(w.needs(e), needConns), "%s: %s", e.lesson, line)
		require.Equal(t, e.n != 5, slices.Contains(w.needs(e), needPostgres), "%s: %s", e.lesson, line)
	}
	require.Contains(t, doctorLine(t, text, "  15. "), "pg_stat_statements")
	require.Contains(t, doctorLine(t, text, "  18. "), "a replica")
	for _, bad := range []string{"ALTER SYSTEM", "pg_ctl"} {
		require.NotContains(t, text, bad)
	}
}

// TestDoctorWeighsConnectionsAgainstTheRoom: on the workshop's server, the
// room's connections are the trainees times the per-trainee budget
// (WORKSHOP_MAX_CONNS, the harness's own included, or with none the
// heaviest lesson's measured peak), against max_connections.
func TestDoctorWeighsConnectionsAgainstTheRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("connects to the workshop's server; skipped with -short")
	}
	if _, ok := lookupDatabase(); !ok {
		t.Skip(workshopenv.DatabaseURL + " is not set")
	}
	peaks, err := parsePeaks(peakConnections)
	require.NoError(t, err)
	top := heaviest(peaks)
	t.Setenv(workshopenv.MaxConns, "")
	w, out := newWorkshop(t, &fakeRunner{})
	_ = w.main(context.Background(), []string{"doctor", "-trainees", "1000"})
	line := doctorLine(t, out.String(), "  MISSING  connections")
	require.Contains(t, line, fmt.Sprintf("1000 trainees × %d connections a trainee at most (lesson %d, the heaviest, measured", top.peak, top.n), "the heaviest lesson's measured connections")

	t.Setenv(workshopenv.MaxConns, "6")
	out.Reset()
	_ = w.main(context.Background(), []string{"doctor", "-trainees", "1"})
	require.Contains(t, doctorLine(t, out.String(), "  ok       connections"), "1 trainees × 6 connections (WORKSHOP_MAX_CONNS, the harness's 4 included) a trainee")

	t.Setenv(workshopenv.MaxConns, "9")
	out.Reset()
	_ = w.main(context.Background(), []string{"doctor", "-trainees", "1000"})
	require.Contains(t, doctorLine(t, out.String(), "  MISSING  connections"), "1000 trainees × 9 connections (WORKSHOP_MAX_CONNS, the harness's 4 included) a trainee + 18 for the one check at a time above it", "the budget, the harness's part in it, and the largest check's turn")
	require.Contains(t, out.String(), "  ok       PostgreSQL           PostgreSQL ")
}

// TestDoctorsFigureIsTheMeasuredMaximum: the connections doctor weighs a
// trainee at with no budget are the largest peak of peak-connections.txt,
// the file peaks -w writes, and the lesson it names is that peak's.
func TestDoctorsFigureIsTheMeasuredMaximum(t *testing.T) {
	peaks, err := parsePeaks(peakConnections)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(peaks), 20, "every lesson measured")
	most := 0
	for _, p := range peaks {
		most = max(most, p.peak)
	}
	require.Equal(t, most, heaviest(peaks).peak)

	t.Setenv(workshopenv.MaxConns, "")
	conns, said, turn := traineeConns()
	require.Equal(t, most, conns, "doctor's figure with no budget")
	require.Zero(t, turn, "with no budget no check takes a turn")
	require.Contains(t, said, fmt.Sprintf("%d connections a trainee at most (lesson %d, the heaviest, measured", most, heaviest(peaks).n))

	got, err := parsePeaks("# a comment\n13 67 2026-12-07 linux/amd64,2cpu\n5 0 2026-12-07 linux/amd64,2cpu\n17 70 2026-12-07 linux/amd64,2cpu\n")
	require.NoError(t, err)
	require.Equal(t, lessonPeak{n: 17, peak: 70}, heaviest(got))
	for _, bad := range []string{"", "# only a comment\n", "13\n", "x 4 d m\n", "13 -1 d m\n"} {
		_, err := parsePeaks(bad)
		require.Error(t, err, "%q", bad)
	}
}

// TestTheBudgetThatFitsCountsOneLargeCheck: the budget doctor suggests fits
// the trainees' budgets and, once, the largest exercise check's excess over
// one (the checks above a budget take the room's turn): on PostgreSQL's
// default 100 connections, 3 reserved, ten trainees fit at 7 (10 × 7 + 19 =
// 89), not at 8 (80 + 19 = 99), and not at the 9 the budgets alone would
// allow (90 + 18 = 108).
func TestTheBudgetThatFitsCountsOneLargeCheck(t *testing.T) {
	require.Equal(t, 19, workshopenv.CheckExcess(7, workshopenv.LargestCheckPools))
	require.Equal(t, 19, workshopenv.CheckExcess(8, workshopenv.LargestCheckPools))
	require.Equal(t, 18, workshopenv.CheckExcess(9, workshopenv.LargestCheckPools))
	require.Equal(t, 7, fittingBudget(97, 10))
	require.Equal(t, 14, fittingBudget(97, 6), "6 × 14 + 13 = 97")
	require.Equal(t, workshopenv.MinBudget, fittingBudget(50, 10), "never below the smallest budget")
}
