// Package redistest gives the workshop's tests and benchmarks a Redis, found
// like PostgreSQL: the URL in WORKSHOP_REDIS_URL, else a container started by
// testcontainers-go, else an error that says how to get one. With
// WORKSHOP_RTT set, Redis is reached through the same kind of latency proxy
// as PostgreSQL.
//
// Each caller gets its own key prefix, under wvs:<WORKSHOP_DB_PREFIX>, and
// its keys are deleted when its test ends: the harness touches no key it did
// not write, and runs under different prefixes never see each other's keys.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/rttproxy"
	"works-vs-scales/internal/workshopenv"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// DefaultImage is the Redis the container path runs, as docker-compose.yml.
const DefaultImage = "redis:7-alpine"

// ErrNoRedis is returned when neither a URL nor Docker gives a Redis.
var ErrNoRedis = errors.New("no Redis available")

const howToGetOne = `Give the workshop a Redis in one of three ways:

  1. Point it at a server you have (it writes and deletes only keys under wvs:<prefix>):
       export WORKSHOP_REDIS_URL='redis://127.0.0.1:6379/0'

  2. Start Docker and run the tests again: the harness starts a ` + DefaultImage + ` container
     (no registry? bash scripts/images builds a stand-in; then
      export WORKSHOP_REDIS_IMAGE=works-vs-scales/redis:7 TESTCONTAINERS_RYUK_DISABLED=true,
      since testcontainers' reaper is an image too).

  3. Start the workshop's own and export its URL:
       docker compose up -d
       export WORKSHOP_REDIS_URL='redis://127.0.0.1:6379/0'`

// Image returns the Redis image of the container path: WORKSHOP_REDIS_IMAGE,
// or DefaultImage.
func Image(getenv func(string) string) string {
	if image := getenv(workshopenv.RedisImage); image != "" {
		return image
	}
	return DefaultImage
}

// startFunc starts a Redis container; stop is non-nil whenever something may
// need cleaning up, even when err is not.
type startFunc func(ctx context.Context) (url string, stop func() error, err error)

// locate returns the URL of a Redis, and what stops it if the harness started it.
func locate(ctx context.Context, getenv func(string) string, start startFunc) (string, func() error, error) {
	if url := getenv(workshopenv.RedisURL); url != "" {
		return url, nil, nil
	}
	url, stop, err := start(ctx)
	if err != nil {
		if stop != nil {
			err = errors.Join(err, stop())
		}
		return "", nil, fmt.Errorf("%w: %s is not set and no container could be started (%v)\n\n%s", ErrNoRedis, workshopenv.RedisURL, err, howToGetOne)
	}
	return url, stop, nil
}

// startContainer starts a Redis container of the test binary's own, of the
// image WORKSHOP_REDIS_IMAGE names or DefaultImage; stop removes it.
func startContainer(ctx context.Context) (string, func() error, error) {
	image := Image(os.Getenv)
	ctr, err := tcredis.Run(ctx, image, testcontainers.WithLabels(map[string]string{pgtest.PartLabel: "redis"}))
	stop := func() error { return testcontainers.TerminateContainer(ctr) }
	if err != nil {
		return "", stop, fmt.Errorf("start container %s: %w (an image built by scripts/images? set %s, and TESTCONTAINERS_RYUK_DISABLED=true)", image, err, workshopenv.RedisImage)
	}
	url, err := ctr.ConnectionString(ctx)
	if err != nil {
		return "", stop, fmt.Errorf("connection string of container %s: %w", image, err)
	}
	return url, stop, nil
}

var server struct {
	once     sync.Once
	client   *redis.Client
	stop     func() error
	err      error
	prefixes atomic.Int64
}

// Client returns a client on the workshop's Redis and a key prefix of the
// caller's own, wvs:<WORKSHOP_DB_PREFIX><pid>:<n>:; the keys under it are
// deleted when the test ends.
func Client(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	server.once.Do(func() { server.client, server.stop, server.err = open(context.Background(), os.Getenv) })
	if server.err != nil {
		tb.Fatalf("redistest: %v", server.err)
	}
	prefix := fmt.Sprintf("wvs:%s%d:%d:", pgtest.Prefix(), os.Getpid(), server.prefixes.Add(1))
	tb.Cleanup(func() {
		if err := DeleteKeys(context.Background(), server.client, prefix); err != nil {
			tb.Errorf("redistest: %v", err)
		}
	})
	return server.client, prefix
}

// ClientWithFaults is [Client] reached through a proxy of its own, which the
// test drives to make Redis unreachable: [rttproxy.Proxy.Down] refuses
// connections, [rttproxy.Proxy.Hang] holds every byte. The client and the proxy
// are closed, and the keys under prefix deleted, when the test ends. The
// client's reads and writes time out after timeout.
func ClientWithFaults(tb testing.TB, timeout time.Duration) (*redis.Client, string, *rttproxy.Proxy) {
	tb.Helper()
	direct, prefix := Client(tb)
	proxy, err := rttproxy.Start("tcp", direct.Options().Addr, 0)
	if err != nil {
		tb.Fatalf("redistest: fault proxy: %v", err)
	}
	tb.Cleanup(func() {
		if err := proxy.Close(); err != nil {
			tb.Errorf("redistest: close the fault proxy: %v", err)
		}
	})
	opts := *direct.Options()
	opts.Addr = proxy.Addr().String()
	opts.ReadTimeout, opts.WriteTimeout = timeout, timeout
	faultLogs.once.Do(func() { redis.SetLogger(faultLogs.logger) })
	tb.Cleanup(faultLogs.logger.quiet(opts.Addr)) // after the client closes
	client := redis.NewClient(&opts)
	tb.Cleanup(func() { client.Close() }) // before the proxy closes
	return client, prefix, proxy
}

// faultLogs is go-redis's logger once a test has asked for a client with
// faults. go-redis has one logger per process, so it is set once and never
// restored: tests that run in parallel would restore it under each other.
var faultLogs = struct {
	once   sync.Once
	logger *faultLogger
}{logger: newFaultLogger(os.Stderr)}

// faultLogger drops go-redis's log lines that name the address of a fault
// proxy a test holds (its pool failing to dial what the test made
// unreachable, which the test asserts through the client's errors) and writes
// every other line as go-redis's own logger does.
type faultLogger struct {
	out *log.Logger

	mu    sync.Mutex
	addrs map[string]int // fault proxy address → clients on it
}

func newFaultLogger(w io.Writer) *faultLogger {
	return &faultLogger{out: log.New(w, "redis: ", log.LstdFlags), addrs: make(map[string]int)}
}

// quiet drops the lines that name addr until the returned release is called.
func (l *faultLogger) quiet(addr string) (release func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs[addr]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.addrs[addr]--; l.addrs[addr] == 0 {
			delete(l.addrs, addr)
		}
	}
}

// Printf writes the line unless it names a quieted address.
func (l *faultLogger) Printf(_ context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	for addr := range l.addrs {
		if names(msg, addr) {
			l.mu.Unlock()
			return
		}
	}
	l.mu.Unlock()
	l.out.Print(msg)
}

// names reports whether msg names addr, a host and port: not merely a longer
// port that starts with addr's.
func names(msg, addr string) bool {
	for rest := msg; ; {
		i := strings.Index(rest, addr)
		if i < 0 {
			return false
		}
		rest = rest[i+len(addr):]
		if rest == "" || rest[0] < '0' || rest[0] > '9' {
			return true
		}
	}
}

// open connects to the workshop's Redis, through a latency proxy when
// WORKSHOP_RTT is set: in production Redis sits across the same network as
// PostgreSQL, so a lesson that adds a round trip to one adds it to both.
func open(ctx context.Context, getenv func(string) string) (*redis.Client, func() error, error) {
	rtt, err := workshopenv.ParseRTT(getenv(workshopenv.RTT))
	if err != nil {
		return nil, nil, err
	}
	url, stop, err := locate(ctx, getenv, startContainer)
	if err != nil {
		return nil, nil, err
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, stop, fmt.Errorf("parse %s: %w", workshopenv.RedisURL, err)
	}
	if rtt > 0 {
		proxy, err := rttproxy.Start(opts.Network, opts.Addr, rtt)
		if err != nil {
			return nil, stop, fmt.Errorf("latency proxy to Redis at %s: %w", opts.Addr, err)
		}
		stop = joinStops(proxy.Close, stop)
		opts.Network, opts.Addr = "tcp", proxy.Addr().String()
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, stop, fmt.Errorf("%w: ping %s: %v\n\n%s", ErrNoRedis, opts.Addr, err, howToGetOne)
	}
	return client, stop, nil
}

// joinStops returns a stop that runs first, then next if there is one.
func joinStops(first, next func() error) func() error {
	if next == nil {
		return first
	}
	return func() error { return errors.Join(first(), next()) }
}

// DeleteKeys deletes every key under prefix.
func DeleteKeys(ctx context.Context, client *redis.Client, prefix string) error {
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("list keys under %s: %w", prefix, err)
	}
	for start := 0; start < len(keys); start += 1000 {
		if err := client.Del(ctx, keys[start:min(start+1000, len(keys))]...).Err(); err != nil {
			return fmt.Errorf("delete keys under %s: %w", prefix, err)
		}
	}
	return nil
}

// Close closes the client and stops the container the harness started, if
// any. The TestMain of a lesson that uses Redis (bench/caching) passes it to
// pgtest.Main, which runs it after the tests.
func Close() error {
	var errs []error
	if server.client != nil {
		errs = append(errs, server.client.Close())
	}
	if server.stop != nil {
		errs = append(errs, server.stop())
	}
	return errors.Join(errs...)
}
