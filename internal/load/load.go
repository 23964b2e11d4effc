// Package load drives an HTTP service the way its users would, and says what
// they saw: latencies by quantile, errors, timeouts, and goodput, the
// responses that succeeded within their deadline.
//
// Open runs an open loop: requests leave at a constant rate whatever the
// service answers, the way independent users arrive, stepping up through a
// list of rates. Closed runs a closed loop: a fixed number of workers, each
// sending its next request when the last one is answered, the way most
// benchmarks and load scripts work. A closed loop slows down when the service
// does, so it sends fewer requests exactly when they would have waited
// longest, and its latencies hide the stall (coordinated omission): measure
// both at the same throughput and compare their tails.
//
// Both are built on github.com/tsenart/vegeta/v12's attacker. Results print
// as Go benchmark lines (WriteBench), so cmd/lessons makes their tables and
// charts like every other lesson's.
package load

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"works-vs-scales/shop"
)

// ErrInvalidConfig says that a run's configuration cannot be run: no rates,
// a rate or duration not above zero, a rate or worker count beyond
// [MaxRate], no targets. It wraps shop.ErrInvalidConfig, as every other
// refusal of a configuration in the workshop does.
var ErrInvalidConfig = fmt.Errorf("invalid load configuration: %w", shop.ErrInvalidConfig)

// MaxRate is the most requests per second Open sends, and the most workers
// Closed runs: far beyond what one machine's loopback serves, and a bound on
// the goroutines and connections a typo can ask for.
const MaxRate = 100_000

// Target is one request to send.
type Target struct {
	Method string // "" means GET
	URL    string
	Header http.Header
	Body   []byte
}

// Targets returns the request to send as the seq-th of a step, counting from
// zero. It is called from many goroutines at once; a deterministic mix (the
// seq-th user of a fixed-seed permutation) makes two runs send the same
// requests.
type Targets func(seq uint64) Target

// Config is what both loops share.
type Config struct {
	// Targets gives each request. Required.
	Targets Targets
	// Duration is how long each step sends requests. Required.
	Duration time.Duration
	// Timeout is how long a request may take before the client gives up
	// on it and counts it a timeout; 0 means 10 s.
	Timeout time.Duration
	// Deadline is how long a user waits for an answer: a success slower
	// than this is not goodput. 0 means Timeout.
	Deadline time.Duration
	// Client, if not nil, sends the requests (its Timeout is replaced by
	// Timeout). Nil means vegeta's default client: keep-alive, up to
	// 10,000 idle connections per host.
	Client *http.Client
	// OnAnswer, if not nil, is called with each request's answer as it
	// comes in, one call at a time: what a step's sums cannot say, such as
	// when the failures of a fault drill stopped.
	OnAnswer func(Answer)
}

// Answer is what one request got.
type Answer struct {
	Method, URL string
	Sent        time.Time     // when it left
	Latency     time.Duration // until its answer, or until the client gave up
	Status      int           // the HTTP status; 0 for no answer
	Timeout     bool          // given up on by the client after Timeout
}

// Step is what one step of load saw.
type Step struct {
	// Rate is the offered rate in requests per second: the rate asked
	// for, in an open loop; what the workers sent, in a closed one.
	Rate float64
	// Workers is the number of workers of a closed loop; 0 in an open one.
	Workers int
	// Elapsed is how long the step took, from the first request sent to
	// the last answer.
	Elapsed time.Duration

	Requests int // sent
	OK       int // answered 2xx
	Good     int // answered 2xx within Deadline
	Timeouts int // given up on by the client after Timeout
	Errors   int // everything but 2xx: timeouts, refused connections, 4xx, 5xx
	// Codes counts the answers by HTTP status; 0 is no answer (an error
	// or a timeout).
	Codes map[int]int

	// Latencies of every request, answered or not, as quantiles: a
	// request that timed out counts as Timeout. No latency exceeds
	// Timeout: one measured longer (Overdue) is counted as Timeout.
	Mean, P50, P90, P99, P999, Max time.Duration

	sent []sent // when each request left; Open's, until it counts the late

	// Refused counts the answers that shed the request, at once, so that
	// the client may come back (503 Service Unavailable, 429 Too Many
	// Requests): counted in Errors too.
	Refused int
	// OKMean and the OK quantiles are the latencies of the successes (2xx)
	// alone: what the users who were served waited. Zero without one.
	OKMean, OKP50, OKP99, OKP999 time.Duration

	// Scheduled is how many requests the step's schedule asked for (rate
	// × duration, in an open loop; 0 in a closed one), Late how many
	// left more than MaxLag after their time, and Lag the latest any
	// left. Overdue counts the latencies measured past Timeout plus
	// MaxLag: the client had given up by then, so the time was the
	// generator's, not the service's (a goroutine that did not run).
	Scheduled, Late, Overdue int
	Lag                      time.Duration
}

// MaxLag is how late a request of an open loop may leave, or how long past
// its timeout its latency may be measured, before the step counts it
// against the generator.
const MaxLag = 10 * time.Millisecond

// KeptSchedule reports whether the generator did what the step says: it
// sent at least 99% of the requests the schedule asked for, at most 1% of
// them (or one) more than MaxLag late, and measured no latency past the timeout. A
// step that did not keep its schedule measured the generator as much as the
// service: its latencies are not the service's, and a capacity must not
// rest on it. A closed loop has no schedule and keeps it.
func (s Step) KeptSchedule() bool {
	if s.Overdue > 0 {
		return false
	}
	if s.Scheduled == 0 {
		return true
	}
	return 100*s.Requests >= 99*s.Scheduled && (100*s.Late <= s.Requests || s.Late <= 1)
}

// Goodput returns the successes within the deadline per second: the share
// of the step's requests that were, at the rate they were offered. A server
// that answers everything in time has a goodput equal to the offered rate.
func (s Step) Goodput() float64 { return s.share(s.Good) }

// Throughput returns the answers of any status, 5xx included, per second, as
// Goodput does: what a dashboard counting responses shows.
func (s Step) Throughput() float64 { return s.share(s.Requests - s.Codes[0]) }

func (s Step) share(n int) float64 {
	if s.Requests == 0 {
		return 0
	}
	return s.Rate * float64(n) / float64(s.Requests)
}

// Metric is one value of a step in a unit, as a benchmark line shows it.
type Metric struct {
	Value float64
	Unit  string
}

// Metrics returns the step's values in benchmark units: ns/op is the mean
// latency; then the quantiles in milliseconds, goodput and throughput in
// requests per second (offered, good, answered), and the shares of errors and timeouts in percent.
func (s Step) Metrics() []Metric {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	pct := func(n int) float64 {
		if s.Requests == 0 {
			return 0
		}
		return 100 * float64(n) / float64(s.Requests)
	}
	return []Metric{
		{float64(s.Mean.Nanoseconds()), "ns/op"},
		{ms(s.P50), "p50-ms"},
		{ms(s.P90), "p90-ms"},
		{ms(s.P99), "p99-ms"},
		{ms(s.P999), "p99.9-ms"},
		{ms(s.Max), "max-ms"},
		{s.Goodput(), "goodput-rps"},
		{s.Throughput(), "throughput-rps"},
		{s.Rate, "offered-rps"},
		{pct(s.Errors), "errors-%"},
		{pct(s.Timeouts), "timeouts-%"},
		{ms(s.OKP99), "ok-p99-ms"},
		{pct(s.Refused), "refused-%"},
	}
}

// ReportTo reports the step's Metrics to b, a *testing.B, so that a
// benchmark that runs a step prints them as its results.
func (s Step) ReportTo(b interface{ ReportMetric(float64, string) }) {
	for _, m := range s.Metrics() {
		b.ReportMetric(m.Value, m.Unit)
	}
}

// WriteBench writes the steps as Go benchmark result lines, one a step:
// Benchmark<name>/impl=<impl>/rate=<rate> for an open loop, .../workers=<n>
// for a closed one, with the step's requests as iterations and its Metrics as
// values; go test's own lines, and what internal/report reads.
func WriteBench(w io.Writer, name, impl string, steps []Step) error {
	for _, s := range steps {
		size := fmt.Sprintf("rate=%.0f", s.Rate)
		if s.Workers > 0 {
			size = fmt.Sprintf("workers=%d", s.Workers)
		}
		var line strings.Builder
		fmt.Fprintf(&line, "Benchmark%s/impl=%s/%s \t%d", name, impl, size, s.Requests)
		for _, m := range s.Metrics() {
			fmt.Fprintf(&line, "\t%.6g %s", m.Value, m.Unit)
		}
		line.WriteString("\n")
		if _, err := io.WriteString(w, line.String()); err != nil {
			return fmt.Errorf("write results of %s: %w", name, err)
		}
	}
	return nil
}

func (c Config) check() (Config, error) {
	if c.Targets == nil {
		return c, fmt.Errorf("no targets: %w", ErrInvalidConfig)
	}
	if c.Duration <= 0 {
		return c, fmt.Errorf("duration %v: %w", c.Duration, ErrInvalidConfig)
	}
	if c.Timeout < 0 || c.Deadline < 0 {
		return c, fmt.Errorf("timeout %v, deadline %v: %w", c.Timeout, c.Deadline, ErrInvalidConfig)
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Deadline == 0 {
		c.Deadline = c.Timeout
	}
	return c, nil
}

// Open sends requests at each rate in turn, in requests per second, for
// cfg.Duration each, whatever the service answers: a request leaves on time
// even when every earlier one is still waiting. It returns a Step a rate. A
// step ends when its last request is answered or times out; ctx cancelled
// stops sending and returns the steps so far with ctx's error.
//
// A request never waits for an earlier one, so a step has up to its rate
// times cfg.Timeout requests in flight, each a goroutine and a connection.
func Open(ctx context.Context, cfg Config, rates ...int) ([]Step, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if len(rates) == 0 {
		return nil, fmt.Errorf("no rates: %w", ErrInvalidConfig)
	}
	for _, r := range rates {
		if r <= 0 || r > MaxRate {
			return nil, fmt.Errorf("rate %d per second, want 1 to %d: %w", r, MaxRate, ErrInvalidConfig)
		}
	}
	steps := make([]Step, 0, len(rates))
	for _, r := range rates {
		// No cap on workers: a request never waits for a free one, so
		// the loop stays open.
		attacker := newAttacker(cfg)
		pacer := vegeta.ConstantPacer{Freq: r, Per: time.Second}
		step, err := run(ctx, cfg, attacker, pacer, fmt.Sprintf("rate=%d", r))
		step.Rate = float64(r)
		step.Scheduled = int(int64(r) * int64(cfg.Duration) / int64(time.Second))
		step.Late, step.Lag = lateness(step.sent, time.Second/time.Duration(r))
		step.sent = nil
		steps = append(steps, step)
		if err != nil {
			return steps, err
		}
	}
	return steps, nil
}

// Closed runs workers that each send a request, wait for its answer, and send
// the next, for cfg.Duration: the service's pace sets the rate. The step's
// Rate is what was sent per second.
func Closed(ctx context.Context, cfg Config, workers int) (Step, error) {
	cfg, err := cfg.check()
	if err != nil {
		return Step{}, err
	}
	if workers <= 0 || workers > MaxRate {
		return Step{}, fmt.Errorf("%d workers, want 1 to %d: %w", workers, MaxRate, ErrInvalidConfig)
	}
	attacker := newAttacker(cfg, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)))
	// A rate of zero is vegeta's "as fast as the workers go".
	step, err := run(ctx, cfg, attacker, vegeta.ConstantPacer{}, fmt.Sprintf("workers=%d", workers))
	step.Workers, step.sent = workers, nil
	if step.Elapsed > 0 {
		step.Rate = float64(step.Requests) / cfg.Duration.Seconds()
	}
	return step, err
}

func newAttacker(cfg Config, opts ...func(*vegeta.Attacker)) *vegeta.Attacker {
	if cfg.Client != nil {
		client := *cfg.Client
		client.Timeout = cfg.Timeout
		opts = append([]func(*vegeta.Attacker){vegeta.Client(&client)}, opts...)
	} else {
		opts = append([]func(*vegeta.Attacker){vegeta.Timeout(cfg.Timeout)}, opts...)
	}
	opts = append(opts, vegeta.MaxBody(0), vegeta.KeepAlive(true))
	return vegeta.NewAttacker(opts...)
}

// run attacks for one step and sums up its results.
func run(ctx context.Context, cfg Config, attacker *vegeta.Attacker, pacer vegeta.Pacer, name string) (Step, error) {
	var seq atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		next := cfg.Targets(seq.Add(1) - 1)
		t.Method, t.URL, t.Header, t.Body = next.Method, next.URL, next.Header, next.Body
		if t.Method == "" {
			t.Method = http.MethodGet
		}
		return nil
	}
	stop := context.AfterFunc(ctx, func() { attacker.Stop() })
	defer stop()

	step := Step{Codes: make(map[int]int)}
	var latencies, okLatencies []time.Duration
	var first, last time.Time
	var total, okTotal time.Duration
	for res := range attacker.Attack(targeter, pacer, cfg.Duration, name) {
		step.Requests++
		step.sent = append(step.sent, sent{res.Seq, res.Timestamp})
		latency := res.Latency
		timedOut := res.Code == 0 && isTimeout(res.Error)
		if latency > cfg.Timeout {
			// The client gave up at Timeout: what came after was
			// the generator's own delay.
			if latency > cfg.Timeout+MaxLag {
				step.Overdue++
			}
			latency, timedOut, res.Code = cfg.Timeout, true, 0
		}
		step.Codes[int(res.Code)]++
		switch {
		case res.Code >= 200 && res.Code < 300:
			step.OK++
			if latency <= cfg.Deadline {
				step.Good++
			}
			okLatencies = append(okLatencies, latency)
			okTotal += latency
		case timedOut:
			step.Timeouts++
			step.Errors++
			latency = cfg.Timeout
		case res.Code == http.StatusServiceUnavailable || res.Code == http.StatusTooManyRequests:
			step.Refused++
			step.Errors++
		default:
			step.Errors++
		}
		latencies = append(latencies, latency)
		total += latency
		if cfg.OnAnswer != nil {
			cfg.OnAnswer(Answer{Method: res.Method, URL: res.URL, Sent: res.Timestamp, Latency: latency,
				Status: int(res.Code), Timeout: timedOut})
		}
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		if end := res.End(); end.After(last) {
			last = end
		}
	}
	if step.Requests > 0 {
		step.Elapsed = last.Sub(first)
		step.Mean = total / time.Duration(step.Requests)
		slices.Sort(latencies)
		step.P50 = quantile(latencies, 0.50)
		step.P90 = quantile(latencies, 0.90)
		step.P99 = quantile(latencies, 0.99)
		step.P999 = quantile(latencies, 0.999)
		step.Max = latencies[len(latencies)-1]
	}
	if len(okLatencies) > 0 {
		step.OKMean = okTotal / time.Duration(len(okLatencies))
		slices.Sort(okLatencies)
		step.OKP50 = quantile(okLatencies, 0.50)
		step.OKP99 = quantile(okLatencies, 0.99)
		step.OKP999 = quantile(okLatencies, 0.999)
	}
	if err := ctx.Err(); err != nil {
		return step, fmt.Errorf("load %s: %w", name, err)
	}
	return step, nil
}

// sent is when a request of a step left, and its place in the schedule.
type sent struct {
	seq uint64
	at  time.Time
}

// lateness returns how many of the requests left more than MaxLag after
// their time in a schedule of one every interval from the first (seq 0),
// and the latest any left.
func lateness(requests []sent, interval time.Duration) (late int, lag time.Duration) {
	var began time.Time
	for _, r := range requests {
		if r.seq == 0 {
			began = r.at
		}
	}
	if began.IsZero() {
		return 0, 0
	}
	for _, r := range requests {
		d := r.at.Sub(began.Add(time.Duration(r.seq) * interval))
		if d > MaxLag {
			late++
		}
		lag = max(lag, d)
	}
	return late, lag
}

// quantile returns the q-quantile of sorted latencies, exactly: the
// smallest latency that at least q of them do not exceed (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// isTimeout reports whether an error of net/http's client is its Timeout.
func isTimeout(msg string) bool {
	return strings.Contains(msg, "Client.Timeout exceeded") || strings.Contains(msg, "context deadline exceeded") || strings.Contains(msg, "i/o timeout")
}
