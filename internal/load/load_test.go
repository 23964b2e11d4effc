package load_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"works-vs-scales/internal/load"
	"works-vs-scales/internal/report"
	"works-vs-scales/shop"
)

// server starts h on a loopback port, closed when the test ends.
func server(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	t.Cleanup(srv.Close)
	srv.Start()
	return srv.URL
}

func get(url string) load.Targets {
	return func(seq uint64) load.Target {
		return load.Target{URL: url + "/?seq=" + strconv.FormatUint(seq, 10)}
	}
}

func TestOpenSendsEveryRateForItsDurationWithEachSeqOnce(t *testing.T) {
	var mu sync.Mutex
	seen := make(map[uint64]int)
	url := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := strconv.ParseUint(r.URL.Query().Get("seq"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[seq]++
		mu.Unlock()
	}))
	cfg := load.Config{Targets: get(url), Duration: 200 * time.Millisecond}
	steps, err := load.Open(t.Context(), cfg, 50, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 {
		t.Fatalf("%d steps, want 2", len(steps))
	}
	for i, want := range []int{10, 20} { // rate × 0.2 s
		s := steps[i]
		// The pacer never runs ahead of its rate: at most one request more
		// than rate × duration (the one at time zero). It catches up after a
		// stall, but a machine busy enough near the step's end can leave it
		// any number short: how many is the machine's doing, so the test
		// asserts only that the step sent something, and says how much.
		if s.Requests < 1 || s.Requests > want+1 {
			t.Errorf("step %d: %d requests at %v/s for %v, want 1 to %d", i, s.Requests, s.Rate, cfg.Duration, want+1)
		}
		if s.Requests < want*3/4 {
			t.Logf("step %d: %d requests of %d: a busy machine", i, s.Requests, want)
		}
		if s.OK != s.Requests || s.Good != s.Requests || s.Errors != 0 || s.Timeouts != 0 {
			t.Errorf("step %d: %+v, want every request good", i, s)
		}
		if s.P50 > s.P99 || s.P99 > s.P999 || s.P999 > s.Max || s.Max <= 0 {
			t.Errorf("step %d: quantiles out of order: %v %v %v %v", i, s.P50, s.P99, s.P999, s.Max)
		}
	}
	// Each step counts from zero: the seqs below the first step's count
	// were seen twice, the rest once.
	for seq := range uint64(steps[1].Requests) {
		want := 1
		if seq < uint64(steps[0].Requests) {
			want = 2
		}
		if seen[seq] != want {
			t.Errorf("seq %d seen %d times, want %d", seq, seen[seq], want)
		}
	}
}

func TestOpenCountsTimeoutsAndRefusalsAsErrorsAndNotAsGoodput(t *testing.T) {
	url := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stuck":
			<-r.Context().Done() // answers nothing until the client gives up
		case "/full":
			w.Header().Set("Retry-After", "1")
			http.Error(w, "full", http.StatusServiceUnavailable)
		}
	}))
	cfg := load.Config{
		Targets:  func(seq uint64) load.Target { return load.Target{URL: url + []string{"/stuck", "/full"}[seq%2]} },
		Duration: 100 * time.Millisecond,
		Timeout:  50 * time.Millisecond,
	}
	steps, err := load.Open(t.Context(), cfg, 100)
	if err != nil {
		t.Fatal(err)
	}
	s := steps[0]
	if s.Requests == 0 || s.Timeouts+s.Codes[http.StatusServiceUnavailable] != s.Requests {
		t.Fatalf("%+v: want every request a timeout or a 503", s)
	}
	if s.Timeouts != s.Codes[0] || s.Timeouts < s.Requests/2 {
		t.Errorf("%d timeouts of %d requests, codes %v", s.Timeouts, s.Requests, s.Codes)
	}
	if s.Errors != s.Requests || s.OK != 0 || s.Good != 0 || s.Goodput() != 0 {
		t.Errorf("%+v: want every request an error and no goodput", s)
	}
	if s.Max < cfg.Timeout {
		t.Errorf("max latency %v with timeouts of %v", s.Max, cfg.Timeout)
	}
}

func TestGoodputExcludesSuccessesLaterThanTheDeadline(t *testing.T) {
	url := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(20 * time.Millisecond) // the service is slow, deterministically slower than the deadline
		}
	}))
	cfg := load.Config{
		Targets:  func(seq uint64) load.Target { return load.Target{URL: url + []string{"/slow", "/fast"}[seq%2]} },
		Duration: 100 * time.Millisecond,
		Deadline: 10 * time.Millisecond,
	}
	steps, err := load.Open(t.Context(), cfg, 100)
	if err != nil {
		t.Fatal(err)
	}
	s := steps[0]
	slow := (s.Requests + 1) / 2
	if s.OK != s.Requests || s.Good > s.Requests-slow {
		t.Errorf("%+v: want %d successes, at most %d good", s, s.Requests, s.Requests-slow)
	}
}

func TestClosedNeverHasMoreInFlightThanWorkers(t *testing.T) {
	var inFlight, most atomic.Int64
	url := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond) // a service that takes a while: workers wait for it
	}))
	cfg := load.Config{Targets: get(url), Duration: 100 * time.Millisecond}
	s, err := load.Closed(t.Context(), cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if most.Load() > 3 {
		t.Errorf("%d requests in flight at once with 3 workers", most.Load())
	}
	if s.Workers != 3 || s.Requests == 0 || s.OK != s.Requests {
		t.Errorf("%+v", s)
	}
	if want := float64(s.Requests) / cfg.Duration.Seconds(); s.Rate != want {
		t.Errorf("rate %v, want %v", s.Rate, want)
	}
}

func TestStopsWhenTheContextIsCancelled(t *testing.T) {
	url := server(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ctx, cancel := context.WithCancel(t.Context())
	var once sync.Once
	targets := func(seq uint64) load.Target {
		once.Do(cancel) // the first request cancels the run
		return load.Target{URL: url}
	}
	steps, err := load.Open(ctx, load.Config{Targets: targets, Duration: time.Hour}, 10, 20)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(steps) != 1 {
		t.Errorf("%d steps after cancelling the first", len(steps))
	}
}

func TestRejectsWhatCannotRun(t *testing.T) {
	targets := get("http://127.0.0.1:1")
	for name, run := range map[string]func() error{
		"no rates": func() error {
			_, err := load.Open(t.Context(), load.Config{Targets: targets, Duration: time.Second})
			return err
		},
		"zero rate": func() error {
			_, err := load.Open(t.Context(), load.Config{Targets: targets, Duration: time.Second}, 10, 0)
			return err
		},
		"negative rate": func() error {
			_, err := load.Open(t.Context(), load.Config{Targets: targets, Duration: time.Second}, -5)
			return err
		},
		"huge rate": func() error {
			_, err := load.Open(t.Context(), load.Config{Targets: targets, Duration: time.Second}, 1<<40)
			return err
		},
		"no targets":  func() error { _, err := load.Open(t.Context(), load.Config{Duration: time.Second}, 10); return err },
		"no duration": func() error { _, err := load.Open(t.Context(), load.Config{Targets: targets}, 10); return err },
		"zero workers": func() error {
			_, err := load.Closed(t.Context(), load.Config{Targets: targets, Duration: time.Second}, 0)
			return err
		},
		"huge workers": func() error {
			_, err := load.Closed(t.Context(), load.Config{Targets: targets, Duration: time.Second}, 1<<30)
			return err
		},
		"negative timeout": func() error {
			_, err := load.Closed(t.Context(), load.Config{Targets: targets, Duration: time.Second, Timeout: -1}, 1)
			return err
		},
	} {
		err := run()
		if !errors.Is(err, load.ErrInvalidConfig) || !errors.Is(err, shop.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want load.ErrInvalidConfig, a shop.ErrInvalidConfig", name, err)
		}
	}
}

func TestWriteBenchIsReadByTheReport(t *testing.T) {
	steps := []load.Step{
		{Rate: 100, Requests: 100, OK: 100, Good: 100, Elapsed: time.Second, P99: 3 * time.Millisecond, Codes: map[int]int{200: 100}},
		{Rate: 200, Requests: 200, OK: 150, Good: 50, Errors: 50, Timeouts: 50, Elapsed: 2 * time.Second, P99: 2 * time.Second, OKP99: 40 * time.Millisecond, Codes: map[int]int{200: 150, 0: 50}},
		{Rate: 400, Requests: 400, OK: 100, Good: 100, Errors: 300, Refused: 300, Elapsed: time.Second, P99: 50 * time.Millisecond, OKP99: 50 * time.Millisecond, Codes: map[int]int{200: 100, 503: 300}},
	}
	var out bytes.Buffer
	if err := load.WriteBench(&out, "Overload", "naive", steps); err != nil {
		t.Fatal(err)
	}
	r, err := report.Parse(&out, "load.bench")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unplaced) > 0 {
		t.Fatalf("unplaced: %v", r.Unplaced)
	}
	b := r.Find("Overload")
	if b == nil || b.SizeKey != "rate" || len(b.Sizes) != 3 {
		t.Fatalf("benchmark %+v, want Overload by rate at three rates", b)
	}
	for _, c := range []struct {
		rate  float64
		unit  string
		value float64
	}{
		{100, "goodput-rps", 100}, {200, "goodput-rps", 50}, {200, "throughput-rps", 150},
		{200, "p99-ms", 2000}, {200, "timeouts-%", 25}, {200, "errors-%", 25}, {100, "offered-rps", 100},
		{200, "ok-p99-ms", 40}, {200, "refused-%", 0}, {400, "refused-%", 75}, {400, "timeouts-%", 0}, {400, "goodput-rps", 100},
	} {
		if got, ok := b.Median("naive", c.rate, c.unit); !ok || got != c.value {
			t.Errorf("rate=%v %s = %v (%v), want %v", c.rate, c.unit, got, ok, c.value)
		}
	}
}

func TestOpenReportsEachAnswer(t *testing.T) {
	url := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seq, _ := strconv.Atoi(r.URL.Query().Get("seq")); seq%2 == 1 {
			http.Error(w, "odd", http.StatusServiceUnavailable)
		}
	}))
	var answers []load.Answer
	start := time.Now()
	cfg := load.Config{Targets: get(url), Duration: 200 * time.Millisecond, OnAnswer: func(a load.Answer) { answers = append(answers, a) }}
	steps, err := load.Open(t.Context(), cfg, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != steps[0].Requests {
		t.Fatalf("%d answers reported for %d requests", len(answers), steps[0].Requests)
	}
	for _, a := range answers {
		seq, err := strconv.Atoi(a.URL[len(url)+len("/?seq="):])
		if err != nil {
			t.Fatalf("answer for %q: %v", a.URL, err)
		}
		want := http.StatusOK
		if seq%2 == 1 {
			want = http.StatusServiceUnavailable
		}
		if a.Method != http.MethodGet || a.Status != want || a.Timeout || a.Sent.Before(start) || a.Latency <= 0 {
			t.Errorf("answer %+v, want GET answered %d after the start", a, want)
		}
	}
}

// TestOpenMeanIsOfTheSuccessesAnswered: the mean of the successes is their
// latencies' sum over their number, to the nanosecond, the latencies being
// the ones each answer reports; every other request is left out.
func TestOpenMeanIsOfTheSuccessesAnswered(t *testing.T) {
	url := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seq, _ := strconv.Atoi(r.URL.Query().Get("seq")); seq%3 == 2 {
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	var sum time.Duration
	ok := 0
	cfg := load.Config{Targets: get(url), Duration: 200 * time.Millisecond, OnAnswer: func(a load.Answer) {
		if a.Status == http.StatusOK {
			sum += a.Latency
			ok++
		}
	}}
	steps, err := load.Open(t.Context(), cfg, 50)
	if err != nil {
		t.Fatal(err)
	}
	s := steps[0]
	if s.OK != ok || ok == 0 {
		t.Fatalf("%d successes counted, %d reported", s.OK, ok)
	}
	if want := sum / time.Duration(ok); s.OKMean != want {
		t.Errorf("mean of the successes %v, want %v (%v over %d)", s.OKMean, want, sum, ok)
	}
}

func TestOpenCountsShedsApartAndQuantilesOfSuccessesAlone(t *testing.T) {
	url := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/busy":
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case "/greedy":
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "/broken":
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	paths := []string{"/ok", "/busy", "/greedy", "/broken"}
	cfg := load.Config{
		Targets:  func(seq uint64) load.Target { return load.Target{URL: url + paths[seq%4]} },
		Duration: 200 * time.Millisecond,
	}
	steps, err := load.Open(t.Context(), cfg, 100)
	if err != nil {
		t.Fatal(err)
	}
	s := steps[0]
	if s.Scheduled != 20 {
		t.Errorf("scheduled %d requests, want 20", s.Scheduled)
	}
	if s.Refused != s.Codes[http.StatusServiceUnavailable]+s.Codes[http.StatusTooManyRequests] || s.Refused == 0 {
		t.Errorf("%d shed, codes %v", s.Refused, s.Codes)
	}
	if s.Errors != s.Requests-s.OK || s.Errors-s.Refused != s.Codes[http.StatusInternalServerError] {
		t.Errorf("%d errors, %d shed, codes %v", s.Errors, s.Refused, s.Codes)
	}
	if s.OK == 0 || s.OKP50 <= 0 || s.OKP50 > s.OKP99 || s.OKP99 > s.OKP999 || s.OKP999 > s.Max {
		t.Errorf("success quantiles %v %v %v, max %v", s.OKP50, s.OKP99, s.OKP999, s.Max)
	}
}

func TestNoLatencyExceedsTheTimeoutAndAStalledGeneratorSpoilsTheStep(t *testing.T) {
	url := server(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	const rate = 100
	cfg := load.Config{Duration: 300 * time.Millisecond, Timeout: 50 * time.Millisecond}
	// The first request's preparation stalls until the step's last request
	// is prepared, about 290 ms on: a generator that did not run its
	// goroutine, as a starved one does. The client's timeout never started.
	last := uint64(rate*cfg.Duration/time.Second) - 1
	released := make(chan struct{})
	var once sync.Once
	cfg.Targets = func(seq uint64) load.Target {
		switch seq {
		case 0:
			// On a machine too busy to send the last request within
			// the step, the stall ends anyway, long past the timeout.
			select {
			case <-released:
			case <-time.After(2 * time.Second):
			}
		case last:
			once.Do(func() { close(released) })
		}
		return load.Target{URL: url}
	}
	steps, err := load.Open(t.Context(), cfg, rate)
	if err != nil {
		t.Fatal(err)
	}
	s := steps[0]
	if s.Overdue < 1 || s.KeptSchedule() {
		t.Errorf("%d overdue, kept schedule %v: want the stall seen", s.Overdue, s.KeptSchedule())
	}
	if s.Max > cfg.Timeout {
		t.Errorf("max latency %v past the client's timeout of %v", s.Max, cfg.Timeout)
	}
	if s.Timeouts < 1 {
		t.Errorf("%d timeouts: the stalled request counts as one", s.Timeouts)
	}
}

func TestTheSuccessesMeanIsTheirMean(t *testing.T) {
	// Every request succeeds: the successes' figures are every request's.
	url := server(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	steps, err := load.Open(t.Context(), load.Config{Targets: get(url), Duration: 200 * time.Millisecond}, 50)
	if err != nil {
		t.Fatal(err)
	}
	s := steps[0]
	if s.OK == 0 || s.OK != s.Requests {
		t.Fatalf("%d of %d requests succeeded, want all (codes %v)", s.OK, s.Requests, s.Codes)
	}
	if s.OKMean != s.Mean || s.OKP50 != s.P50 || s.OKP99 != s.P99 || s.OKP999 != s.P999 {
		t.Errorf("successes' mean and quantiles %v %v %v %v, every request's %v %v %v %v: want the same",
			s.OKMean, s.OKP50, s.OKP99, s.OKP999, s.Mean, s.P50, s.P99, s.P999)
	}
}

// openConns counts the connections a server has open, as it sees them.
type openConns struct{ n atomic.Int64 }

func (c *openConns) track(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		c.n.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.n.Add(-1)
	}
}

func TestEachStepClosesTheConnectionsItOpened(t *testing.T) {
	var conns openConns
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = conns.track
	t.Cleanup(srv.Close)
	srv.Start()
	cfg := load.Config{Targets: get(srv.URL), Duration: 100 * time.Millisecond}
	if _, err := load.Open(t.Context(), cfg, 50, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := load.Closed(t.Context(), cfg, 4); err != nil {
		t.Fatal(err)
	}
	// The server sees a close when it reads it: wait for that, not longer.
	deadline := time.Now().Add(5 * time.Second)
	for conns.n.Load() > 0 && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if n := conns.n.Load(); n != 0 {
		t.Errorf("%d connections still open after the steps ended: each step's idle connections (and their goroutines) outlive it", n)
	}
}

func TestAClientOfTheCallersIsUsedAsGiven(t *testing.T) {
	url := server(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var used atomic.Int64
	for name, client := range map[string]*http.Client{
		"no transport":    {},
		"a round tripper": {Transport: countingTransport{&used}},
	} {
		steps, err := load.Open(t.Context(), load.Config{Targets: get(url), Duration: 100 * time.Millisecond, Client: client}, 50)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s := steps[0]; s.OK != s.Requests || s.OK == 0 {
			t.Errorf("%s: %d of %d requests succeeded", name, s.OK, s.Requests)
		}
	}
	if used.Load() == 0 {
		t.Error("the caller's round tripper sent nothing")
	}
}

type countingTransport struct{ n *atomic.Int64 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}
