package rttproxy

import (
	"syscall"
	"time"
)

// spinWindow is how close sleepThread gets to its time: nanosleep(2)
// oversleeps by about 0.1 ms, even on a loaded machine.
const spinWindow = 150 * time.Microsecond

// sleepThread blocks the calling thread for about d, or less if a signal
// interrupts it: the Go scheduler runs other goroutines on other threads.
func sleepThread(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.Nanosleep(&ts, nil)
}
