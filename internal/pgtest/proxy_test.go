package pgtest

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers each line with the same line until the client hangs up.
func echoServer(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { listener.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		io.Copy(conn, conn)
	}()
	return listener.Addr().String()
}

func TestProxyAddsTheRoundTrip(t *testing.T) {
	const rtt = 20 * time.Millisecond
	proxy, err := StartProxy("tcp", echoServer(t), rtt)
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
	proxy, err := StartProxy("tcp", echoServer(t), time.Millisecond)
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
