package pgtest

import "syscall"

// dieWithParent makes the kernel stop the child when this process ends, by
// any means: a test binary killed (SIGKILL, a -timeout panic) or interrupted
// (Main exits without running the tests' cleanups) leaves no PgBouncer
// running. The signal is SIGTERM, PgBouncer's immediate shutdown. The kernel
// sends it when the thread that started the child ends, which in Go is when
// the process does: the runtime ends a thread only when a goroutine locked to
// it (runtime.LockOSThread) exits locked, which nothing here does.
func dieWithParent(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGTERM }
