package rttproxy

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers each line with the same line until the client hangs up,
// on every connection.
func echoServer(t *testing.T) string {
	t.Helper()
	addr, _ := countingEchoServer(t)
	return addr
}

// countingEchoServer is echoServer, also counting the connections it accepted.
func countingEchoServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	var accepted atomic.Int64
	done := make(chan struct{})
	t.Cleanup(func() { listener.Close(); <-done; conns.Wait() })
	go func() {
		defer close(done)
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns.Go(func() {
				defer conn.Close()
				io.Copy(conn, conn)
			})
		}
	}()
	return listener.Addr().String(), &accepted
}

// echo sends line through conn and returns the reply, or the error of
// waiting for it up to wait.
func echo(conn net.Conn, line string, wait time.Duration) (string, error) {
	if err := conn.SetDeadline(time.Now().Add(wait)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, line); err != nil {
		return "", err
	}
	return bufio.NewReader(conn).ReadString('\n')
}

func TestProxyAddsTheRoundTrip(t *testing.T) {
	const rtt = 20 * time.Millisecond
	proxy, err := Start("tcp", echoServer(t), rtt)
	require.NoError(t, err)
	defer proxy.Close()

	conn, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	replies := bufio.NewReader(conn)
	for _, line := range []string{"SELECT 1\n", "SELECT 2\n"} {
		started := time.Now()
		_, err := io.WriteString(conn, line)
		require.NoError(t, err)
		reply, err := replies.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, line, reply, "bytes pass through unchanged")
		assert.GreaterOrEqual(t, time.Since(started), rtt, "each round trip waits at least the RTT")
	}
}

func TestProxyCloseEndsConnections(t *testing.T) {
	proxy, err := Start("tcp", echoServer(t), time.Millisecond)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "hello\n")
	require.NoError(t, err)
	_, err = bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)

	require.NoError(t, proxy.Close())
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = conn.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the client sees the connection closed")
	// goleak, in TestMain, checks that no proxy goroutine outlives Close.
}

func TestProxyHangHoldsEveryByteUntilResume(t *testing.T) {
	server, accepted := countingEchoServer(t)
	proxy, err := Start("tcp", server, 0)
	require.NoError(t, err)
	defer proxy.Close()
	conn, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = echo(conn, "hello\n", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, int64(1), accepted.Load())

	proxy.Hang()
	_, err = echo(conn, "ping\n", 50*time.Millisecond)
	var netErr net.Error
	require.ErrorAs(t, err, &netErr, "a hung connection answers nothing")
	require.True(t, netErr.Timeout(), "only the caller's deadline ends the wait: %v", err)

	fresh, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err, "the kernel completes the handshake: the port is open")
	defer fresh.Close()
	_, err = echo(fresh, "new\n", 50*time.Millisecond)
	require.ErrorAs(t, err, &netErr, "a new connection hears nothing either")
	require.True(t, netErr.Timeout(), "%v", err)
	assert.Equal(t, int64(1), accepted.Load(), "the hung proxy accepted nothing, so dialled nothing")

	proxy.Resume()
	reply, err := echo(conn, "", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "ping\n", reply, "the held bytes go through after Resume")
	reply, err = echo(fresh, "", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "new\n", reply, "the waiting connection is accepted after Resume")
}

func TestProxyResetClosesOpenConnectionsOnly(t *testing.T) {
	proxy, err := Start("tcp", echoServer(t), 0)
	require.NoError(t, err)
	defer proxy.Close()
	conn, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = echo(conn, "before\n", 5*time.Second)
	require.NoError(t, err)

	proxy.Reset()
	_, err = echo(conn, "after\n", 5*time.Second)
	require.ErrorIs(t, err, syscall.ECONNRESET, "the open connection is reset, as by a crashed server")

	fresh, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err)
	defer fresh.Close()
	reply, err := echo(fresh, "fresh\n", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "fresh\n", reply, "a new connection works")
}

func TestProxyDownRefusesUntilUp(t *testing.T) {
	proxy, err := Start("tcp", echoServer(t), 0)
	require.NoError(t, err)
	defer proxy.Close()

	open, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err)
	defer open.Close()
	_, err = echo(open, "before\n", 5*time.Second)
	require.NoError(t, err)

	proxy.Down()
	_, err = echo(open, "ping\n", 5*time.Second)
	require.ErrorIs(t, err, syscall.ECONNRESET, "an open connection is reset")
	_, err = net.Dial("tcp", proxy.Addr().String())
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "a new one is refused: nothing listens")

	proxy.Up()
	conn, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	reply, err := echo(conn, "ping\n", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "ping\n", reply)
}

func TestProxySetRTTAddsLatencyToOpenConnections(t *testing.T) {
	proxy, err := Start("tcp", echoServer(t), 0)
	require.NoError(t, err)
	defer proxy.Close()
	conn, err := net.Dial("tcp", proxy.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = echo(conn, "fast\n", 5*time.Second)
	require.NoError(t, err)

	const rtt = 30 * time.Millisecond
	proxy.SetRTT(rtt)
	started := time.Now()
	reply, err := echo(conn, "slow\n", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "slow\n", reply)
	assert.GreaterOrEqual(t, time.Since(started), rtt, "the open connection now waits the new RTT")
}
