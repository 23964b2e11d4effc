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
// benchmark closes its standard input; the generator then gives the requests
// in flight rungGrace to be answered, abandons the rest, and prints what it
// sent and what it saw.

const (
	generatorURLEnv  = "WVS_POOLSIZE_GENERATOR_URL"
	generatorRateEnv = "WVS_POOLSIZE_GENERATOR_RATE"
	generatorPrefix  = "generator-summary: "
)

// generatorSummary is what the generator process reports: the requests it
// sent, those answered OK, failed, abandoned (still unanswered rungGrace
// after it stopped sending) and sent late; the seconds from its start to the
// last answer OK (to when it stopped sending, if none came), the time the
// requests counted in OK had; and the latencies of its requests, an
// abandoned one's counted at the time it was abandoned: where Abandoned is
// not 0 its real wait was longer, and the percentiles are lower bounds.
type generatorSummary struct {
	Sent, OK, Failed, Abandoned, Late int64
	Seconds                           float64
	P50ms, P99ms                      float64
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
	var lastOK time.Time
	start := time.Now()
	load, err := startOpenLoop(perSecond, func(ctx context.Context, i int64) error {
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
		if ctx.Err() != nil { // abandoned: timed to its abandonment, a lower bound of its wait
			mu.Lock()
			latencies = append(latencies, time.Since(began))
			mu.Unlock()
			return ctx.Err()
		}
		if err != nil {
			return err
		}
		mu.Lock()
		answered := time.Now()
		latencies = append(latencies, answered.Sub(began))
		if answered.After(lastOK) {
			lastOK = answered
		}
		mu.Unlock()
		return nil
	})
	require.NoError(t, err, "%s=%q", generatorRateEnv, rate)
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
	load.stopArrivals()
	stopped := time.Now()
	load.finish(stopped.Add(rungGrace))
	// OK counts the answers that came in the grace too, so its time runs to
	// the last of them: dividing by the time spent sending alone reported,
	// past the knee, a served rate above the server's (a queue drained in the
	// grace, counted as if served while sending). Not to finish's return:
	// one request abandoned would add the whole grace, in which nothing
	// counted was answered.
	seconds := stopped.Sub(start).Seconds()
	if lastOK.After(stopped) {
		seconds = lastOK.Sub(start).Seconds()
	}
	summary := generatorSummary{Sent: load.started.Load(), OK: load.paid.Load(), Failed: load.failed.Load(),
		Abandoned: load.abandoned.Load(), Late: load.late.Load(), Seconds: seconds}
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

// stopSending tells the generator to stop sending.
func (g *generator) stopSending() { g.stdin.Close() }

// stop tells the generator to stop sending, waits for it to end (after at
// most rungGrace for the requests it sent) and returns its summary.
func (g *generator) stop() (generatorSummary, error) {
	g.stopSending()
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
// it sends on arrived, when arrived has room, as each request arrives.
func spendServer(tb testing.TB, s *scalable.Shop, arrived chan<- struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
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
	return srv
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
	// Requests still in flight rungGrace after it stopped would have been
	// abandoned: neither answered nor failed, but sent and perhaps received.
	assert.LessOrEqual(t, summary.OK, received.Load(), "answered, at most what the service saw")
	assert.GreaterOrEqual(t, summary.Sent, received.Load(), "sent, at least what the service saw")
	assert.Equal(t, summary.Sent, summary.OK+summary.Failed+summary.Abandoned, "every request sent is counted once")
	assert.Positive(t, summary.OK)
	assert.Zero(t, summary.Failed)
}

// heldServer answers every request once release is called, not before (a
// request canceled meanwhile is let go); it closes twenty when the twentieth
// arrives, and releases the requests at the test's end if the test has not.
func heldServer(t *testing.T) (url string, twenty <-chan struct{}, release func()) {
	var received atomic.Int64
	arrived, released := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if received.Add(1) == 20 {
			close(arrived)
		}
		select {
		case <-released:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release) // runs before srv.Close, which waits for the handlers
	return srv.URL, arrived, release
}

// TestPoolSizeGeneratorTimesWhatItCounts: requests the server holds until
// after the generator stopped sending, then answers within the grace, are
// counted OK, and the seconds their rate is taken over run to their answers:
// at least from the first request's arrival to their release. (Timed to when
// the generator stopped sending, 20 requests answered in the grace made a
// rate above what was served.)
func TestPoolSizeGeneratorTimesWhatItCounts(t *testing.T) {
	if os.Getenv(generatorURLEnv) != "" {
		t.Skip("in the generator process")
	}
	url, twenty, release := heldServer(t)
	g, err := startGenerator(t, url, 200)
	require.NoError(t, err)
	<-twenty
	firstArrived := time.Now() // after the first request arrived, so after the generator started
	g.stopSending()
	hold := time.NewTimer(rungGrace / 4) // held past the generator's stop, answered well within its grace
	<-hold.C
	released := time.Now() // before any answer
	release()
	summary, err := g.stop()
	require.NoError(t, err)
	require.Zero(t, summary.Abandoned, "released %v after the stop, within the grace: none abandoned", rungGrace/4)
	assert.Equal(t, summary.Sent, summary.OK, "every request answered, in the grace")
	assert.GreaterOrEqual(t, summary.Seconds, released.Sub(firstArrived).Seconds(),
		"the answers came after their release: the seconds they are counted over reach it")
}

// TestPoolSizeGeneratorTimesTheAbandoned: requests never answered are
// abandoned, each timed at its abandonment, at least rungGrace after it was
// sent, so the generator's p99 is at least that, not an empty 0.
func TestPoolSizeGeneratorTimesTheAbandoned(t *testing.T) {
	if os.Getenv(generatorURLEnv) != "" {
		t.Skip("in the generator process")
	}
	url, twenty, _ := heldServer(t)
	g, err := startGenerator(t, url, 200)
	require.NoError(t, err)
	<-twenty
	summary, err := g.stop()
	require.NoError(t, err)
	assert.Zero(t, summary.OK)
	assert.Equal(t, summary.Sent, summary.Abandoned, "none answered: every request abandoned")
	grace := float64(rungGrace) / float64(time.Millisecond)
	assert.GreaterOrEqual(t, summary.P50ms, grace, "each waited rungGrace at least")
	assert.GreaterOrEqual(t, summary.P99ms, grace, "the p99 counts the abandoned, at a lower bound of their wait")
}

// BenchmarkPoolSizeAtRate: user-spend requests (about a millisecond of the
// server's CPU each) at fixed rates, sent over HTTP by a generator in another
// process, to a service whose pool has n connections; meanwhile the
// benchmark makes such requests of its own through the same pool, one after
// another. Each operation is a rung, bounded as the payment ladder's are: a
// quarter of a second of the generator's requests, then 2 s during which
// the benchmark's own are measured (each cut at 1 s: timeouts-%, its latency
// the cap), then the generator stops sending and abandons what is not
// answered a second later (abandoned-%). Its time per operation is the mean
// of the benchmark's own requests. requests/s is what the generator got
// answered a second, from its start to its last answer (those in the grace
// included, so over the time they took too); gen-p99-ms what its requests
// waited (the worst rung's, if there were several), an abandoned one counted
// at its abandonment: where abandoned-% is not 0 the figure is a lower
// bound; late-% the share it sent over a millisecond late.
func BenchmarkPoolSizeAtRate(b *testing.B) {
	db := pgtest.Shop(b, shop.Small)
	ctx := context.Background()
	rates := []int{100, 200, 400, 800, 1600} // to past what 2 CPUs serve: a knee needs a saturated server
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
				arrived := make(chan struct{}, 1)
				srv := spendServer(b, s, arrived)
				var latencies []time.Duration
				var timeouts int
				var total generatorSummary
				for b.Loop() {
					select { // a request of an earlier rung's generator, not this one's
					case <-arrived:
					default:
					}
					g, err := startGenerator(b, srv.URL, rate)
					if err != nil {
						b.Fatal(err)
					}
					<-arrived // the generator process has started sending; then its rate settles
					ramp := time.NewTimer(rampUp)
					<-ramp.C
					windowEnd := time.Now().Add(measureWindow())
					time.AfterFunc(time.Until(windowEnd), g.stopSending) // on time, whatever the last request waits for
					for time.Now().Before(windowEnd) {
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
					total.Sent, total.OK, total.Abandoned, total.Late = total.Sent+summary.Sent, total.OK+summary.OK, total.Abandoned+summary.Abandoned, total.Late+summary.Late
					total.Seconds += summary.Seconds
					total.P99ms = max(total.P99ms, summary.P99ms)
				}
				benchkit.ReportLatencies(b, latencies)
				var sum time.Duration
				for _, l := range latencies {
					sum += l
				}
				b.ReportMetric(float64(sum.Nanoseconds())/float64(len(latencies)), "ns/op") // the requests' mean, not the rung's
				b.ReportMetric(float64(total.OK)/total.Seconds, "requests/s")
				b.ReportMetric(total.P99ms, "gen-p99-ms")
				b.ReportMetric(100*float64(total.Late)/float64(max(total.Sent, 1)), "late-%")
				b.ReportMetric(100*float64(total.Abandoned)/float64(max(total.Sent, 1)), "abandoned-%")
				b.ReportMetric(100*float64(timeouts)/float64(len(latencies)), "timeouts-%")
			})
		}
	}
}
