package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNoPgBouncerSaysHowToGetOne(t *testing.T) {
	_, err := findPgBouncer(func(string) (string, error) { return "", exec.ErrNotFound })
	require.ErrorContains(t, err, "apt-get install pgbouncer or set WORKSHOP_PGBOUNCER_URL")
}

func TestPgBouncerIsLookedForInUsrSbin(t *testing.T) {
	binary, err := findPgBouncer(func(name string) (string, error) {
		if name == "/usr/sbin/pgbouncer" {
			return name, nil
		}
		return "", errors.New("not on PATH")
	})
	require.NoError(t, err)
	require.Equal(t, "/usr/sbin/pgbouncer", binary)
}

func TestStaleDirsOfEndedRunsAreRemoved(t *testing.T) {
	tmp := t.TempDir()
	dir := func(name string) string {
		path := filepath.Join(tmp, name)
		require.NoError(t, os.MkdirAll(filepath.Join(path, "sub"), 0o700))
		return path
	}
	dead := dir(fmt.Sprintf("%s%d-123", dirPrefix, 4242))
	live := dir(fmt.Sprintf("%s%d-123", dirPrefix, 4343))
	own := dir(fmt.Sprintf("%s%d-123", dirPrefix, os.Getpid()))
	older := dir(dirPrefix + "123456") // named before the pid was in the name: unknown, kept
	other := dir("something-else-4242-1")
	removeStaleDirs(tmp, dirPrefix, func(pid int) bool { return pid == 4343 })
	for path, want := range map[string]bool{dead: false, live: true, own: true, older: true, other: true} {
		_, err := os.Stat(path)
		require.Equal(t, want, err == nil, "%s: exists %v", filepath.Base(path), err == nil)
	}
}

func TestProcessAlive(t *testing.T) {
	require.True(t, processAlive(os.Getpid()))
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	require.False(t, processAlive(cmd.Process.Pid), "a process that has exited and been reaped")
}
