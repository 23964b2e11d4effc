package connections

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	scalable "works-vs-scales/scalable/connections"
	"works-vs-scales/shop"
)

// The pool-size curve at fixed arrival rates: the service (a pool of n
// connections behind an HTTP handler, in the benchmark's process) meets
// requests that a generator in another process (this test binary again,
// running TestPoolSizeGenerator) sends at a fixed rate, open loop, until the
// benchmark closes its standard input; the generator then prints what it
// sent and what it saw.

const (
	generatorURLEnv  = "WVS_POOLSIZE_GENERATOR_URL"
	generatorRateEnv = "WVS_POOLSIZE_GENERATOR_RATE"
	generatorPrefix  = "generator-summary: "
)

// generatorSummary is what the generator process reports.
type generatorSummary struct {
	Sent, OK, Failed, Late int64
	Seconds                float64
	P50ms, P99ms           float64
}

// TestPoolSizeGenerator is the generator's entry point in a child process;
// in any other run it skips.
func TestPoolSizeGenerator(t *testing.T) {
	url, rate := os.Getenv(generatorURLEnv), os.Getenv(generatorRateEnv)
	if url == "" {
		t.Skip("the load generator of BenchmarkPoolSizeAtRate: runs only as its child process")
	}
	perSecond, err := strconv.Atoi(rate)
	require.NoError(t, err, "%s=%q", generatorRateEnv, rate)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	var mu sync.Mutex
	var latencies []time.Duration
	var ok, failed atomic.Int64
	start := time.Now()
	load := startOpenLoop(perSecond, func(ctx context.Context, i int64) error {
		began := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/spend?user=%d", url, 11+i%64), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopped: neither counted nor timed
		}
		if err != nil {
			failed.Add(1)
			return err
		}
		ok.Add(1)
		mu.Lock()
		latencies = append(latencies, time.Since(began))
		mu.Unlock()
		return nil
	})
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
	seconds := time.Since(start).Seconds()
	load.stop()
	summary := generatorSummary{Sent: load.started.Load(), OK: ok.Load(), Failed: failed.Load(), Late: load.late.Load(), Seconds: seconds}
	if sorted := slices.Sorted(slices.Values(latencies)); len(sorted) > 0 {
		summary.P50ms = float64(sorted[(len(sorted)-1)*50/100]) / float64(time.Millisecond)
		summary.P99ms = float64(sorted[(len(sorted)-1)*99/100]) / float64(time.Millisecond)
	}
	line, err := json.Marshal(summary)
	require.NoError(t, err)
	fmt.Println(generatorPrefix + string(line))
}

// generator is a running generator process.
type generator struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   strings.Builder
}

// startGenerator starts this test binary again as a generator of rate
// requests a second against url.
func startGenerator(tb testing.TB, url string, rate int) (*generator, error) {
	g := &generator{cmd: exec.Command(os.Args[0], "-test.run=^TestPoolSizeGenerator$", "-test.count=1", "-test.v")}
	g.cmd.Env = append(os.Environ(), generatorURLEnv+"="+url, generatorRateEnv+"="+strconv.Itoa(rate))
	g.cmd.Stdout, g.cmd.Stderr = &g.out, &g.out
	stdin, err := g.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("generator at %d/s: %w", rate, err)
	}
	g.stdin = stdin
	tb.Cleanup(func() { // killed if the benchmark ends before stop
		if g.cmd.ProcessState == nil && g.cmd.Process != nil {
			g.cmd.Process.Kill()
			g.cmd.Wait()
		}
	})
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the generator at %d/s: %w", rate, err)
	}
	return g, nil
}

// stop tells the generator to stop and returns its summary.
func (g *generator) stop() (generatorSummary, error) {
	g.stdin.Close()
	if err := g.cmd.Wait(); err != nil {
		return generatorSummary{}, fmt.Errorf("generator: %w\n%s", err, g.out.String())
	}
	scanner := bufio.NewScanner(strings.NewReader(g.out.String()))
	for scanner.Scan() {
		if line, ok := strings.CutPrefix(scanner.Text(), generatorPrefix); ok {
			var s generatorSummary
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				return s, fmt.Errorf("generator's summary %q: %w", line, err)
			}
			return s, nil
		}
	}
	return generatorSummary{}, fmt.Errorf("generator printed no summary:\n%s", g.out.String())
}

// spendServer serves a user's spend from s over HTTP, as a service would;
// first is closed when the first request arrives.
func spendServer(tb testing.TB, s *scalable.Shop) (srv *httptest.Server, first <-chan struct{}) {
	arrived := make(chan struct{})
	var once sync.Once
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		user, err := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := s.UserSpend(r.Context(), user); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(srv.Close)
	return srv, arrived
}

// TestPoolSizeGeneratorReportsWhatItSent: the generator process sends, and
// what it reports agrees with what the service received.
func TestPoolSizeGeneratorReportsWhatItSent(t *testing.T) {
	if os.Getenv(generatorURLEnv) != "" {
		t.Skip("in the generator process")
	}
	var received atomic.Int64
	twenty := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if received.Add(1) == 20 {
			close(twenty)
		}
	}))
	t.Cleanup(srv.Close)
	g, err := startGenerator(t, srv.URL, 200)
	require.NoError(t, err)
	<-twenty // the generator is running: wait for 20 requests, not for a time
	summary, err := g.stop()
	require.NoError(t, err)
	// Requests still in flight when it stopped were canceled: neither
	// answered nor failed, but sent and perhaps received.
	assert.LessOrEqual(t, summary.OK, received.Load(), "answered, at most what the service saw")
	assert.GreaterOrEqual(t, summary.Sent, received.Load(), "sent, at least what the service saw")
	assert.Positive(t, summary.OK)
	assert.Zero(t, summary.Failed)
}

// probeTimeout bounds the benchmark's own request: past the knee the queue
// grows for as long as the rate lasts, and a rung must end. A request that
// timed out counts in timeouts-% and its latency is the timeout: a p99 at
// 1,000 ms is that cap, not a measurement.
const probeTimeout = time.Second

// BenchmarkPoolSizeAtRate: user-spend requests (about a millisecond of the
// server's CPU each) at fixed rates, sent over HTTP by a generator in another
// process, to a service whose pool has n connections; each operation is one
// more such request made by the benchmark itself through the same pool.
// requests/s is what the generator got answered; gen-p99-ms what its
// requests waited; late-% the share it sent over a millisecond late.
func BenchmarkPoolSizeAtRate(b *testing.B) {
	db := pgtest.Shop(b, shop.Small)
	ctx := context.Background()
	rates := []int{100, 200, 400}
	sizes := []int32{2, 4, 8, 16, 64}
	if testing.Short() {
		rates, sizes = rates[:1], sizes[:1]
	}
	for _, size := range sizes {
		for _, rate := range rates {
			b.Run(fmt.Sprintf("impl=conns-%d/requests-per-s=%d", size, rate), func(b *testing.B) {
				benchkit.SkipAboveBudget(b, size) // a point of the sweep: skipped, not measured under another size's name
				s, err := scalable.New(ctx, scalable.Config{Conn: db.Config().ConnConfig, MaxConns: size})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(s.Close)
				warmPool(b, s, size)
				srv, first := spendServer(b, s)
				g, err := startGenerator(b, srv.URL, rate)
				if err != nil {
					b.Fatal(err)
				}
				<-first // the generator process has started sending; then its rate settles
				ramp := time.NewTimer(rampUp)
				<-ramp.C
				var latencies []time.Duration
				timeouts := 0
				for b.Loop() {
					start := time.Now()
					probe, cancel := context.WithTimeout(ctx, probeTimeout)
					_, err := s.UserSpend(probe, 11)
					cancel()
					if errors.Is(err, context.DeadlineExceeded) {
						timeouts++
					} else if err != nil {
						b.Fatal(err)
					}
					latencies = append(latencies, time.Since(start))
				}
				summary, err := g.stop()
				if err != nil {
					b.Fatal(err)
				}
				if summary.Failed > 0 {
					b.Fatalf("%d of the generator's requests failed", summary.Failed)
				}
				benchkit.ReportLatencies(b, latencies)
				b.ReportMetric(float64(summary.OK)/summary.Seconds, "requests/s")
				b.ReportMetric(summary.P99ms, "gen-p99-ms")
				b.ReportMetric(100*float64(summary.Late)/float64(max(summary.Sent, 1)), "late-%")
				b.ReportMetric(100*float64(timeouts)/float64(len(latencies)), "timeouts-%")
			})
		}
	}
}
