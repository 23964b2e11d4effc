//go:build !linux

package pgtest

import "syscall"

// dieWithParent does nothing where the kernel has no parent-death signal: a
// test binary killed there leaves its PgBouncer running, in a process group
// of its own, to stop by hand (ps -o pid,cmd -C pgbouncer).
func dieWithParent(*syscall.SysProcAttr) {}
