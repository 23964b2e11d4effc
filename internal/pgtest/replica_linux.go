package pgtest

import "syscall"

// childAttr runs a server child as owner (nil: as this process), in a process
// group of its own so that Ctrl-C reaches the test binary, which stops it,
// and killed by the kernel if the test binary dies first.
func childAttr(owner *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: owner, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
