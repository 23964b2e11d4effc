//go:build !linux

package rttproxy

import "time"

// spinWindow is how close sleepThread gets to its time. Elsewhere than Linux
// it sleeps with a Go timer, which may oversleep: the run header's
// rtt-measured says by how much.
const spinWindow = 50 * time.Microsecond

// sleepThread sleeps for about d.
func sleepThread(d time.Duration) { time.Sleep(d) }
