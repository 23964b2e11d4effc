//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel has no parent-death signal: a
// load killed there leaves its shopd running, to stop by hand.
func dieWithParent(*exec.Cmd) {}
