package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"works-vs-scales/internal/load"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// stepResult is a step of the ramp and the database's busy backends
// meanwhile.
type stepResult struct {
	load.Step
	backends samples
}

// pct is n in percent of the step's requests.
func (s stepResult) pct(n int) float64 {
	if s.Requests == 0 {
		return 0
	}
	return 100 * float64(n) / float64(s.Requests)
}

// bad is the percentage of requests that did not succeed: errors, sheds
// and timeouts.
func (s stepResult) bad() float64 { return s.pct(s.Errors) }

// ramp makes the workload's prepared payments, warms the service up, and
// runs the load at each rate in turn.
func ramp(ctx context.Context, o options, wl shopd.Workload, mon *monitor, run int) ([]stepResult, error) {
	if wl.Mix.PayReuse > 0 {
		if err := prepare(ctx, wl, o.timeout); err != nil {
			return nil, err
		}
	}
	// Warm up: connections opened, statements prepared, caches filled.
	warmUp := load.Config{Targets: wl.Targets(1 << 32), Duration: time.Second, Timeout: o.timeout}
	warm, err := load.Open(ctx, warmUp, o.rates[0])
	if err != nil {
		return nil, err
	}
	if w := warm[0]; w.OK == 0 {
		// Nothing to measure: a wrong -target, or a service down.
		return nil, fmt.Errorf("%s: none of the warm-up's %d requests succeeded (answers by HTTP status, 0 for none: refused, reset or timed out: %v): %w",
			wl.Base, w.Requests, w.Codes, errNotServing)
	}
	var steps []stepResult
	for i, rate := range o.rates {
		cfg := load.Config{Targets: wl.Targets(uint64(run)<<16 | uint64(i)), Duration: o.duration, Timeout: o.timeout}
		done := mon.during(ctx)
		st, err := load.Open(ctx, cfg, rate)
		backends := done()
		if err != nil {
			return nil, err
		}
		steps = append(steps, stepResult{Step: st[0], backends: backends})
	}
	return steps, nil
}

// errNotServing says that the service answered none of the warm-up's
// requests with a success.
var errNotServing = errors.New("the service served nothing")

// prepare makes the payments the workload's retries repeat, one at a time.
// Each must be answered 2xx, its body read in full, within timeout.
func prepare(ctx context.Context, wl shopd.Workload, timeout time.Duration) error {
	// A transport of its own, whose connections close when it is done.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: timeout, Transport: transport}
	for _, t := range wl.Prepared() {
		req, err := http.NewRequestWithContext(ctx, t.Method, t.URL, bytes.NewReader(t.Body))
		if err != nil {
			return err
		}
		req.Header = t.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("make the payment %s that the load retries: %w", t.Header.Get("Idempotency-Key"), err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		}
		resp.Body.Close()
		if err != nil && resp.StatusCode/100 == 2 {
			return fmt.Errorf("make the payment %s that the load retries: %s, then its body: %w", t.Header.Get("Idempotency-Key"), resp.Status, err)
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("make the payment %s that the load retries: %s: %s", t.Header.Get("Idempotency-Key"), resp.Status, bytes.TrimSpace(body))
		}
	}
	return nil
}

// write prints the step as a benchmark line: ns/op is the mean latency of
// the successes; every latency is of the successes alone.
func (s stepResult) write(w io.Writer, impl string) error {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	kept := 0
	if s.KeptSchedule() {
		kept = 1
	}
	mean := s.OKMean
	if s.OK == 0 {
		// Nobody was served: the time of the step's slowest answer, not
		// the 0 of no successes, which a table would read as fast.
		mean = max(s.Max, time.Nanosecond)
	}
	var line strings.Builder
	fmt.Fprintf(&line, "BenchmarkShopd/impl=%s/rate=%.0f \t%d\t%d ns/op\t%.4g p50-ms\t%.4g p99-ms\t%.4g p99.9-ms\t%.6g goodput-rps\t%.6g offered-rps\t%.4g shed-%%\t%.4g errors-%%\t%.4g timeouts-%%\t%.4g late-%%\t%d kept-schedule",
		impl, s.Rate, s.Requests, mean.Nanoseconds(), ms(s.OKP50), ms(s.OKP99), ms(s.OKP999), s.Goodput(), s.Rate,
		s.pct(s.Refused), s.pct(s.Errors-s.Refused-s.Timeouts), s.pct(s.Timeouts), s.pct(s.Late), kept)
	if s.backends.ok {
		mean, top := meanMax(s.backends.busy)
		fmt.Fprintf(&line, "\t%.3g backends-busy\t%d backends-busy-max", mean, top)
	}
	line.WriteString("\n")
	_, err := io.WriteString(w, line.String())
	return err
}

func meanMax(samples []int) (float64, int) {
	if len(samples) == 0 {
		return 0, 0
	}
	sum, top := 0, 0
	for _, s := range samples {
		sum, top = sum+s, max(top, s)
	}
	return float64(sum) / float64(len(samples)), top
}

// capacityResult is a run's capacity at the SLO.
type capacityResult struct {
	rate      float64       // the highest rate up to which every step met the SLO; 0 for none
	p99       time.Duration // of the successes, at that rate
	kneeFound bool          // a valid step above it missed the SLO
	invalid   bool          // the walk stopped at a step whose generator fell behind
}

// capacity walks the ramp up while the steps meet the SLO. A step where the
// generator fell behind ends the walk without a knee: past it, the
// generator is measured, not the service.
func capacity(steps []stepResult, objective slo) capacityResult {
	var c capacityResult
	for _, s := range steps {
		if !s.KeptSchedule() {
			c.invalid = true
			return c
		}
		if s.OK == 0 || s.OKP99 > objective.p99 || s.bad() > objective.badPct {
			c.kneeFound = true
			return c
		}
		c.rate, c.p99 = s.Rate, s.OKP99
	}
	return c
}

// says is what the capacity means, in words.
func (c capacityResult) says() string {
	switch {
	case c.kneeFound:
		return "the next rate missed the SLO"
	case c.invalid:
		return "at least: the generator fell behind at the rate above"
	}
	return "at least: the ramp ended first"
}

// write prints the capacity as a benchmark line.
func (c capacityResult) write(w io.Writer, impl string) error {
	knee := 0
	if c.kneeFound {
		knee = 1
	}
	_, err := fmt.Fprintf(w, "BenchmarkCapacity/impl=%s \t1\t%.6g capacity-rps\t%.4g p99-at-capacity-ms\t%d knee-found\n",
		impl, c.rate, float64(c.p99)/float64(time.Millisecond), knee)
	return err
}

// writeConfig writes the configuration lines of a benchmark run: where it
// ran, what it sent, what the SLO is.
func writeConfig(ctx context.Context, w io.Writer, o options, mon *monitor) error {
	fmt.Fprintf(w, "go: %s\ngomaxprocs: %d\ndate: %s\n", runtime.Version(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.DateOnly))
	if commit, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		fmt.Fprintf(w, "commit: %s\n", strings.TrimSpace(string(commit)))
	}
	if conn := mon.ready(ctx); conn != nil {
		if v, err := conn.version(ctx); err == nil {
			fmt.Fprintf(w, "postgres: %s\npostgres-from: %s\n", v, workshopenv.DatabaseURL)
		}
	}
	if o.target != "" {
		fmt.Fprintf(w, "service: %s, running apart\n", o.target)
	} else {
		fmt.Fprintf(w, "service: cmd/shopd, a child process per wiring, stopped between them; runs alternate wirings, order rotating\n")
		added := "none"
		if o.rtt > 0 {
			added = o.rtt.String()
		}
		fmt.Fprintf(w, "rtt-added: %s\n", added)
	}
	fmt.Fprintf(w, "load: open loop from a process of its own, each rate %v, client timeout %v; latencies of the successes (2xx) alone, none above the timeout\n", o.duration, o.timeout)
	fmt.Fprintf(w, "load-mix: %s (users uniform over the shop %v)\n", o.mix, shop.Small)
	fmt.Fprintf(w, "slo: %s\n", o.slo)
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: works-vs-scales/cmd/load\n", runtime.GOOS, runtime.GOARCH)
	if cpu := cpuName(); cpu != "" {
		fmt.Fprintf(w, "cpu: %s\n", cpu)
	}
	return nil
}

// cpuName is the CPU's model name, as /proc/cpuinfo says it ("" elsewhere).
func cpuName() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return ""
}
