package pgtest

import "syscall"

// dieWithParent makes the kernel stop the child when this process ends, by
// any means: a test binary killed (SIGKILL, a -timeout panic) or interrupted
// (Main exits without running the tests' cleanups) leaves no PgBouncer
// running. The signal is SIGTERM, PgBouncer's immediate shutdown.
func dieWithParent(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGTERM }
