//go:build unix && !race

// The race detector multiplies the CPU cost of every channel operation and
// system call, which is not what this file measures: it builds without it.

package rttproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var usage syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &usage))
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// TestProxyDelaysWithoutSpinning: eight connections each waiting out a 1 ms
// round trip cost little CPU. A proxy that spins out each wait costs about the
// RTT in CPU per round trip (0.35 ms even with the machine's cores loaded
// 14 times over, when the spinning goroutines get a fraction of a core), and
// a concurrent benchmark then measures starvation; the scheduler costs
// about 0.06 ms.
func TestProxyDelaysWithoutSpinning(t *testing.T) {
	const (
		rtt    = time.Millisecond
		conns  = 8
		trips  = 100
		budget = rtt / 5 // of CPU per round trip
	)
	proxy, err := Start("tcp", echoServer(t), rtt)
	require.NoError(t, err)
	defer proxy.Close()
	clients := make([]net.Conn, conns)
	for i := range clients {
		clients[i], err = net.Dial("tcp", proxy.Addr().String())
		require.NoError(t, err)
		defer clients[i].Close()
	}

	cpuBefore, started := cpuTime(t), time.Now()
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i, conn := range clients {
		wg.Go(func() {
			replies := bufio.NewReader(conn)
			for range trips {
				trip := time.Now()
				if _, err := io.WriteString(conn, "SELECT 1\n"); err != nil {
					errs[i] = err
					return
				}
				if _, err := replies.ReadString('\n'); err != nil {
					errs[i] = err
					return
				}
				if took := time.Since(trip); took < rtt {
					errs[i] = fmt.Errorf("a round trip took %v, less than the RTT", took)
					return
				}
			}
		})
	}
	wg.Wait()
	wall, cpu := time.Since(started), cpuTime(t)-cpuBefore
	for _, err := range errs {
		require.NoError(t, err, "every round trip succeeds and waits at least the RTT")
	}
	t.Logf("%d connections × %d round trips at %v: %v wall, %v CPU", conns, trips, rtt, wall, cpu)
	assert.Less(t, cpu/(conns*trips), budget, "the proxy's waiting costs little CPU per round trip")
}
