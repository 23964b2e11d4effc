package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scriptedRunner answers with its outputs in turn, the last one repeated, and
// sends the -run pattern of every call to calls.
type scriptedRunner struct {
	mu      sync.Mutex
	outputs []string
	calls   chan string
}

func (s *scriptedRunner) run(_ context.Context, _ string, _ string, args ...string) ([]byte, error) {
	s.mu.Lock()
	out := s.outputs[0]
	if len(s.outputs) > 1 {
		s.outputs = s.outputs[1:]
	}
	s.mu.Unlock()
	s.calls <- args[len(args)-2]
	if strings.Contains(out, "--- FAIL") {
		return []byte(out), exitStatus1
	}
	return []byte(out), nil
}

func TestWatchChecksAgainOnSaveAndMovesOn(t *testing.T) {
	exercises := mustExercises(t)
	dir := t.TempDir() // the lessons and their tests, and exercises of its own
	for _, shared := range []string{"lessons", "bench"} {
		target, err := filepath.Abs(filepath.Join(root, shared))
		require.NoError(t, err)
		require.NoError(t, os.Symlink(target, filepath.Join(dir, shared)))
	}
	for _, e := range exercises {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, e.dir()), 0o755))
	}
	code := filepath.Join(dir, "exercises", "nplusone", "comments.go")
	require.NoError(t, os.WriteFile(code, []byte("package nplusone\n"), 0o644))

	r := &scriptedRunner{outputs: []string{failed, passed, "testing: warning: no tests to run\n"}, calls: make(chan string, 10)}
	w, out := newWorkshop(t, r)
	w.root = dir
	ctx, cancel := context.WithCancel(context.Background())
	tick := make(chan time.Time)
	done := make(chan error, 1)
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { stop() })
	go func() { done <- w.watch(ctx, tick) }()

	require.Equal(t, "^TestExercise01$", <-r.calls, "the first check runs at once")
	tick <- time.Time{} // nothing saved
	tick <- time.Time{} // and the loop is back waiting: the first tick made no check
	require.Empty(t, r.calls, "checked again with nothing saved")

	// Saved as an editor's safe write does, whole, by a rename: the watch
	// may be between two ticks, and a file seen truncated and half-written
	// would be checked twice (rightly, but not what this test counts).
	saved := filepath.Join(dir, "comments.go.saving")
	require.NoError(t, os.WriteFile(saved, []byte("package nplusone // saved\n"), 0o644))
	require.NoError(t, os.Rename(saved, code))
	tick <- time.Time{}
	require.Equal(t, "^TestExercise01$", <-r.calls, "a save checks again")
	require.Equal(t, "^TestExercise02$", <-r.calls, "solved: the next exercise is checked at once")
	tick <- time.Time{}
	require.NoError(t, stop())
	require.Empty(t, r.calls)

	text := out.String()
	require.Contains(t, text, "Watching exercises/nplusone/ (exercise 1)")
	require.Contains(t, text, "Not yet: 1. N+1 queries.")
	require.Contains(t, text, "Solved: 1. N+1 queries.")
	require.Contains(t, text, "Watching exercises/pagination/ (exercise 2)")
}

func TestWatchWithEverythingSolvedReturns(t *testing.T) {
	exercises := mustExercises(t)
	w, out := newWorkshop(t, &fakeRunner{})
	writeSolved(t, w, exercises)
	require.NoError(t, w.watch(context.Background(), nil))
	require.Contains(t, out.String(), "Every exercise is solved.")
}
