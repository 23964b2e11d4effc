package observability

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// LatencyBuckets are the upper bounds, in seconds, of the latency histogram:
// from 1 ms (a query on loopback) to 10 s (a request that timed out), about
// ×2.5 apart, so a percentile read from them is off by at most that step.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics counts requests and errors and times them, labelled by operation
// only: the number of series is bounded by the operations the code names,
// whatever the number of users. It has its own registry, served by Handler.
// It is safe for concurrent use.
type Metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	responses *prometheus.CounterVec // by op and status class, or canceled (Instrument)
	shed      *prometheus.CounterVec // refused on purpose (Instrument and Shed)
}

// NewMetrics returns Metrics registered on a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_requests_total", Help: "Requests handled, by operation.",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_request_errors_total", Help: "Requests that failed, by operation.",
		}, []string{"op"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shop_request_duration_seconds", Help: "Time to handle a request, by operation.",
			Buckets: LatencyBuckets,
		}, []string{"op"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_responses_total", Help: "HTTP responses, by operation and status class (2xx, 4xx, 5xx; canceled for a request left unanswered because its client had gone).",
		}, []string{"op", "status"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_requests_shed_total", Help: "Requests refused on purpose to protect the service (admission control's 503 and 429), by operation; not errors.",
		}, []string{"op"}),
	}
	m.registry.MustRegister(m.requests, m.errors, m.latency, m.responses, m.shed)
	return m
}

// Observe records one request of operation op that took d and failed with
// err (nil if it did not). The user id is not a label: it belongs in the
// request's trace and logs, where each request is one record and costs
// nothing once it is gone.
func (m *Metrics) Observe(op string, userID int64, d time.Duration, err error) {
	_ = userID                             // not a label: see the doc comment
	op = strings.ToValidUTF8(op, "\uFFFD") // Prometheus panics on a label that is not UTF-8
	m.requests.WithLabelValues(op).Inc()
	if err != nil {
		m.errors.WithLabelValues(op).Inc()
	}
	m.latency.WithLabelValues(op).Observe(d.Seconds())
}

// Registry returns the registry the metrics are on, for a caller to add its
// own collectors (the Go runtime's, for one).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler returns the handler serving the metrics in Prometheus's text format,
// for /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Series returns how many time series the registry holds, as a Prometheus
// server storing them would count: one per counter label set, and for each
// histogram label set one per bucket plus +Inf, _sum and _count.
func (m *Metrics) Series() (int, error) { return countSeries(m.registry) }

func countSeries(g prometheus.Gatherer) (int, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, fmt.Errorf("gather metrics: %w", err)
	}
	n := 0
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			if h := metric.GetHistogram(); h != nil {
				n += len(h.GetBucket()) + 3 // buckets, +Inf, _sum, _count
				continue
			}
			n++
		}
	}
	return n, nil
}

// Instrument returns a handler that calls next and records each request under
// the operation route (a fixed name such as "GET /users/{id}/orders", never
// the URL itself, whose ids would make a series per user), and its response
// under the route and its status class, "1xx" to "5xx", "other" for a
// status outside them or "canceled" (below): a label with seven values at
// most, where the status itself would take whatever a handler writes. A response with a status of 500 or more counts as an error, unless
// the handler refused the request on purpose and said so with [Shed]: a
// shed is the service protecting itself, counted apart, so that an alert on
// errors does not fire when admission control works as it should.
//
// A request whose client went away before the handler answered, and which
// the handler left unanswered (nobody is left to read it), is counted under
// the class "canceled", as nginx logs a 499: not a success (net/http's
// implicit 200 was never sent), and not an error of the service's; its
// latency, the time until the handler saw its client gone, is observed with
// the others. Under overload it is what a client that gave up on a queued
// request leaves.
func (m *Metrics) Instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		shed := new(bool)
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), shedKey{}, shed)))
		var err error
		class := statusClass(sw.status)
		switch {
		case sw.canceled(r.Context()):
			class = ClassCanceled
		case *shed:
			m.shed.WithLabelValues(route).Inc()
		case sw.status >= 500:
			err = fmt.Errorf("%s: status %d", route, sw.status)
		}
		m.responses.WithLabelValues(route, class).Inc()
		m.Observe(route, 0, time.Since(start), err)
	})
}

// ClassCanceled is the status class under which [Metrics.Instrument] counts
// a request left unanswered because its client had gone.
const ClassCanceled = "canceled"

// Shed marks the request of ctx as refused on purpose (a 503 or 429 of
// admission control), for [Metrics.Instrument] to count as shed rather than
// as an error. Outside Instrument it does nothing.
func Shed(ctx context.Context) {
	if shed, ok := ctx.Value(shedKey{}).(*bool); ok {
		*shed = true
	}
}

// shedKey keys Instrument's flag in a request's context.
type shedKey struct{}

// statusClass returns the class of an HTTP status, "1xx" to "5xx"; "other"
// for a status outside 100–599.
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// statusWriter remembers the status a handler wrote, and whether it wrote
// anything.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// canceled reports whether the handler wrote nothing because the request's
// client had gone (ctx, the request's context, is done): its status is not
// the 200 net/http would have sent, since nothing was sent.
func (w *statusWriter) canceled(ctx context.Context) bool {
	return !w.wrote && ctx.Err() != nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
