//go:build unix

package pgtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// containerUsers is this test binary's share of a container that the run's
// binaries use together when no reaper removes it: a shared flock on
// <tmp>/<container name>.users, held while the binary runs.
//
// A binary joins before it starts or joins the container, and leaves at its
// end: it trades its shared lock for an exclusive one without waiting, which
// it gets only when no other binary holds the file, and then removes the
// container while it holds it. A binary that joins meanwhile waits for that
// removal to end, then starts a container afresh. The file is never removed:
// a binary that opened it before and locked it after would hold a lock of its
// own on a file nobody else sees. The kernel drops the lock of a binary that
// is killed.
type containerUsers struct{ file *os.File }

func joinContainerUsers(name string) (*containerUsers, error) {
	path := filepath.Join(os.TempDir(), name+".users")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &containerUsers{file: f}, nil
}

// leave runs remove if this binary is the container's last user, and lets go.
func (u *containerUsers) leave(remove func() error) error {
	defer u.file.Close() // unlocks
	err := syscall.Flock(int(u.file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil // another binary still uses it; the last one removes it
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", u.file.Name(), err)
	}
	return remove()
}
