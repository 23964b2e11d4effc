package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// copyExercises makes a tree of its own whose lessons and tests are the
// repository's and whose exercises are copies, to change.
func copyExercises(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, shared := range []string{"lessons", "bench"} {
		target, err := filepath.Abs(filepath.Join(root, shared))
		require.NoError(t, err)
		require.NoError(t, os.Symlink(target, filepath.Join(dir, shared)))
	}
	require.NoError(t, os.CopyFS(filepath.Join(dir, "exercises"), os.DirFS(filepath.Join(root, "exercises"))))
	return dir
}

// TestAVerdictGoesStaleWhenTheFilesChange: the progress file keeps a hash of
// the files each verdict was given to; list shows a verdict as stale once
// they change, counts it no more, and shows it again when they are restored.
func TestAVerdictGoesStaleWhenTheFilesChange(t *testing.T) {
	dir := copyExercises(t)
	w, out := newWorkshop(t, &fakeRunner{output: passed})
	w.root = dir
	require.NoError(t, w.main(context.Background(), []string{"check", "1"}))
	text, err := os.ReadFile(w.statePath())
	require.NoError(t, err)
	hash := filesHash(filepath.Join(dir, "exercises", "nplusone"))
	require.Contains(t, string(text), "01 solved "+hash+" 2026-11-29T13:00:00Z\n")

	out.Reset()
	require.NoError(t, w.main(context.Background(), []string{"list"}))
	require.Contains(t, out.String(), "  solved   1. N+1 queries")
	require.Regexp(t, `\n1 of [0-9]+ solved\.`, out.String())

	files, err := filepath.Glob(filepath.Join(dir, "exercises", "nplusone", "*.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	original, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(files[0], append(original, []byte("\n// changed\n")...), 0o644))
	out.Reset()
	require.NoError(t, w.main(context.Background(), []string{"list"}))
	require.Contains(t, out.String(), "  stale    1. N+1 queries")
	require.Contains(t, out.String(), "(last check: solved, ")
	require.Regexp(t, `\n0 of [0-9]+ solved\.`, out.String())
	require.Contains(t, out.String(), "Next: 1. N+1 queries.", "a stale verdict is no longer solved")

	require.NoError(t, os.WriteFile(files[0], original, 0o644))
	require.NoError(t, os.Chtimes(files[0], time.Now(), time.Now()))
	out.Reset()
	require.NoError(t, w.main(context.Background(), []string{"list"}))
	require.Contains(t, out.String(), "  solved   1. N+1 queries", "the same files, saved again, keep their verdict")
}

// TestNextStartsWhereTheTraineeIs: next is the first exercise not solved
// after the one solved last (by the time of its check), wrapping round;
// -from N starts at N.
func TestNextStartsWhereTheTraineeIs(t *testing.T) {
	w, out := newWorkshop(t, &fakeRunner{output: passed})
	clock := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	w.now = func() time.Time { clock = clock.Add(time.Minute); return clock }
	for _, n := range []string{"12", "13", "15", "3"} { // a room that starts at lesson 12, and one exercise from day one
		w.run = &fakeRunner{output: strings.ReplaceAll(passed, "TestExercise01", "TestExercise"+pad(n))}
		require.NoError(t, w.main(context.Background(), []string{"check", n}))
	}
	require.Contains(t, out.String(), "Next: 14. ", "after 13 solved, 14")
	require.Contains(t, out.String(), "Next: 16. ", "after 15 solved, 16")
	require.Contains(t, out.String(), "Next: 4. ", "after 3 solved last, 4, though 12 and 13 are solved")
	for args, want := range map[string]string{"next": "Next: 4. ", "next -from 12": "Next: 14. ", "next -from 16": "Next: 16. ", "next -from 1": "Next: 1. "} {
		out.Reset()
		require.NoError(t, w.main(context.Background(), strings.Fields(args)))
		require.Contains(t, out.String(), want, args)
	}
	for _, bad := range [][]string{{"next", "-from"}, {"next", "-from", "x"}, {"next", "12"}} {
		require.ErrorIs(t, w.main(context.Background(), bad), errUsage, "%q", bad)
	}
}

func pad(n string) string {
	if len(n) == 1 {
		return "0" + n
	}
	return n
}

// TestHelpListsEveryCommand: help names every command main understands.
func TestHelpListsEveryCommand(t *testing.T) {
	w, out := newWorkshop(t, &fakeRunner{})
	require.NoError(t, w.main(context.Background(), []string{"help"}))
	for _, v := range verbs() {
		require.Contains(t, out.String(), "\n  "+v.name, v.name)
		require.NotEmpty(t, v.what, v.name)
	}
	for _, name := range []string{"list", "check", "next", "hint", "watch", "template", "durations", "time", "help"} {
		require.Contains(t, out.String(), "\n  "+name)
	}
}
