package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send the child SIGTERM, shopd's graceful
// stop, when this process ends by any means: a load killed (SIGKILL, an OOM
// kill) or panicking, whose deferred stops never run, leaves no shopd
// serving, holding its port and its database connections. The kernel sends
// it when the thread that started the child ends, which in Go is when the
// process does: the runtime ends a thread only when a goroutine locked to it
// (runtime.LockOSThread) exits locked, which nothing here does.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
