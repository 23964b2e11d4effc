package main

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckRunsWithRaceWhereTheLessonSaysSo: workshop check runs a check
// with -race exactly when the lesson's command for it has -race, as read
// from the lesson (TestChecksThatNeedTheRaceDetectorSaySo ties that command
// to the check's own RequireRace).
func TestCheckRunsWithRaceWhereTheLessonSaysSo(t *testing.T) {
	var raced []int
	for _, e := range mustExercises(t) {
		r := &fakeRunner{output: passed}
		w, _ := newWorkshop(t, r)
		_ = w.main(context.Background(), []string{"check", itoa(e.n)})
		require.Len(t, r.ran, 1)
		d, err := readDoc(root + "/" + e.lesson)
		require.NoError(t, err)
		require.Equal(t, checkNeedsRace(d), slices.Contains(r.ran[0], "-race"), "lesson %d", e.n)
		if slices.Contains(r.ran[0], "-race") {
			raced = append(raced, e.n)
		}
	}
	for _, n := range []int{6, 12, 16, 18} {
		require.Contains(t, raced, n, "lesson %d's check runs under -race", n)
	}
}

const (
	// panickedInTest is go test's output when the check's own goroutine panics.
	panickedInTest = `=== RUN   TestExercise06
    exercise_test.go:40: menu read at 10s
--- FAIL: TestExercise06 (0.01s)
panic: assignment to entry in nil map [recovered]
	panic: assignment to entry in nil map

goroutine 7 [running]:
testing.tRunner.func1.2({0x7a2c40, 0x8b1e30})
	/usr/local/go/src/testing/testing.go:1872 +0x237
works-vs-scales/exercises/caching.(*Catalog).Product(0xc0001a2000, {0x8c2f10, 0xc0000a4000}, 0x2a)
	/repo/exercises/caching/catalog.go:31 +0x1c5
FAIL	works-vs-scales/bench/caching	0.412s
FAIL
`
	// deadlocked is go test's output when a synctest bubble deadlocks in a
	// goroutine of the answer's: no --- FAIL line at all.
	deadlocked = `=== RUN   TestExercise06
panic: deadlock: main bubble goroutine has exited but blocked goroutines remain

goroutine 21 [sync.Mutex.Lock (durable), synctest bubble 1]:
works-vs-scales/exercises/caching.(*Catalog).refresh(0xc000112000)
	/repo/exercises/caching/catalog.go:52 +0x45
FAIL	works-vs-scales/bench/caching	0.301s
FAIL
`
	// raced is go test -race's output for a check that a data race fails.
	raced = `=== RUN   TestExercise12
==================
WARNING: DATA RACE
Write at 0x00c0000b4010 by goroutine 9:
  works-vs-scales/exercises/races.(*Store).Buy()
      /repo/exercises/races/store.go:40 +0x64
==================
    testing.go:1617: race detected during execution of test
--- FAIL: TestExercise12 (0.20s)
FAIL
FAIL	works-vs-scales/bench/races	1.101s
FAIL
`
)

// TestACheckThatPanicsShowsThePanic: the verdict of a check that panicked, or
// whose bubble deadlocked, is not yet, with the panic and the line of the
// answer's code it names under it; a data race's report is shown likewise.
func TestACheckThatPanicsShowsThePanic(t *testing.T) {
	for _, c := range []struct {
		n      string
		output string
		want   []string
	}{
		{"6", panickedInTest, []string{"Not yet: 6. ", "The check stopped with a panic:", "panic: assignment to entry in nil map", "exercises/caching/catalog.go:31", "What the check printed before it:", "menu read at 10s"}},
		{"6", deadlocked, []string{"Not yet: 6. ", "The check stopped with a panic:", "panic: deadlock: main bubble goroutine has exited but blocked goroutines remain", "exercises/caching/catalog.go:52"}},
		{"12", raced, []string{"Not yet: 12. ", "What the check found:", "WARNING: DATA RACE", "exercises/races/store.go:40", "race detected during execution of test"}},
	} {
		w, out := newWorkshop(t, &fakeRunner{output: c.output, err: exitStatus1})
		require.ErrorIs(t, w.main(context.Background(), []string{"check", c.n}), errNotSolved)
		text := out.String()
		for _, want := range c.want {
			require.Contains(t, text, want, text)
		}
		require.NotContains(t, text, "Not checked", text)
		progress, err := w.progress()
		require.NoError(t, err)
		solved, ok := progress[atoi(t, c.n)]
		require.True(t, ok && !solved.solved, "a check that panicked is recorded as not yet")
		require.NotContains(t, text, "FAIL\t", "go test's own summary stays out:\n%s", text)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
