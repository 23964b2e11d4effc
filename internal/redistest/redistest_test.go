package redistest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"works-vs-scales/internal/workshopenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocateUsesTheURLAsIs(t *testing.T) {
	started := false
	start := func(context.Context) (string, func() error, error) { started = true; return "", nil, nil }
	url, stop, err := locate(context.Background(), func(key string) string {
		return map[string]string{workshopenv.RedisURL: "redis://cache:6379/2"}[key]
	}, start)
	require.NoError(t, err)
	assert.Equal(t, "redis://cache:6379/2", url)
	assert.Nil(t, stop)
	assert.False(t, started)
}

func TestLocateStartsAContainerWithoutURL(t *testing.T) {
	start := func(context.Context) (string, func() error, error) {
		return "redis://container:6379", func() error { return nil }, nil
	}
	url, stop, err := locate(context.Background(), func(string) string { return "" }, start)
	require.NoError(t, err)
	assert.Equal(t, "redis://container:6379", url)
	assert.NotNil(t, stop)
}

func TestLocateFailsWithTheWayOut(t *testing.T) {
	stopped := false
	start := func(context.Context) (string, func() error, error) {
		return "", func() error { stopped = true; return nil }, errors.New("rootless Docker not found")
	}
	_, _, err := locate(context.Background(), func(string) string { return "" }, start)
	require.ErrorIs(t, err, ErrNoRedis)
	for _, want := range []string{"rootless Docker not found", "export WORKSHOP_REDIS_URL=", "docker compose up -d", "bash scripts/images", "WORKSHOP_REDIS_IMAGE=works-vs-scales/redis:7", "TESTCONTAINERS_RYUK_DISABLED=true"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.True(t, stopped)
}

// TestRTTPutsRedisBehindTheLatencyProxy: with WORKSHOP_RTT set, every round
// trip to Redis costs at least the RTT, as every one to PostgreSQL does.
func TestRTTPutsRedisBehindTheLatencyProxy(t *testing.T) {
	const rtt = 20 * time.Millisecond
	ctx := context.Background()
	client, stop, err := open(ctx, func(key string) string {
		if key == workshopenv.RTT {
			return rtt.String()
		}
		return os.Getenv(key)
	})
	t.Cleanup(func() {
		if stop != nil {
			assert.NoError(t, stop())
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() }) // before the proxy stops
	for range 3 {
		started := time.Now()
		require.NoError(t, client.Ping(ctx).Err())
		assert.GreaterOrEqual(t, time.Since(started), rtt, "a round trip to Redis waits the RTT")
	}
}

func TestParseRTT(t *testing.T) {
	for setting, want := range map[string]time.Duration{"": 0, "0s": 0, "1ms": time.Millisecond, "500us": 500 * time.Microsecond} {
		got, err := workshopenv.ParseRTT(setting)
		require.NoError(t, err, setting)
		assert.Equal(t, want, got, setting)
	}
	for _, setting := range []string{"-1ms", "1", "soon", "1ms junk"} {
		_, err := workshopenv.ParseRTT(setting)
		assert.ErrorContains(t, err, workshopenv.RTT, setting)
	}
}

// TestFaultLogsAreDroppedOthersKept: go-redis's log lines about a fault
// proxy (the pool failing to dial what a test made unreachable) are dropped
// while a test holds it, and only those: a line about another address, or
// about the proxy once its test has ended, is written as go-redis would.
func TestFaultLogsAreDroppedOthersKept(t *testing.T) {
	var out strings.Builder
	logs := newFaultLogger(&out)
	const dialFailed = "redis: connection pool: failed to dial after %d attempts: %v"
	proxyDown := errors.New("dial tcp 127.0.0.1:37585: connect: connection refused")
	similar := errors.New("dial tcp 127.0.0.1:3758: connect: connection refused")
	realRedis := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

	release := logs.quiet("127.0.0.1:37585")
	logs.Printf(context.Background(), dialFailed, 5, proxyDown)
	assert.Empty(t, out.String(), "the fault proxy's line is dropped")
	logs.Printf(context.Background(), dialFailed, 5, realRedis)
	logs.Printf(context.Background(), dialFailed, 5, similar)
	assert.Contains(t, out.String(), "127.0.0.1:6379", "another address's line is written")
	assert.Contains(t, out.String(), "127.0.0.1:3758:", "an address the proxy's starts with is another address")

	out.Reset()
	again := logs.quiet("127.0.0.1:37585") // two clients on one proxy
	release()
	logs.Printf(context.Background(), dialFailed, 5, proxyDown)
	assert.Empty(t, out.String(), "dropped while a test still holds the proxy")
	again()
	logs.Printf(context.Background(), dialFailed, 5, proxyDown)
	assert.Contains(t, out.String(), "127.0.0.1:37585", "written once no test holds it")
}
