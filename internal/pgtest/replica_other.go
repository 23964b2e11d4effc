//go:build !linux

package pgtest

import "syscall"

// childAttr runs a server child as owner (nil: as this process), in a process
// group of its own so that Ctrl-C reaches the test binary, which stops it.
func childAttr(owner *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: owner, Setpgid: true}
}
