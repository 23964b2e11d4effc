package observability

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// LatencyBuckets are the upper bounds, in seconds, of the latency histogram.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics counts requests and errors and times them, labelled by operation
// and by user id, so that a dashboard can show any one user's requests. Each
// new user adds a counter and a histogram of 16 series, for as long as the
// process runs, and to every scrape. It has its own registry, served by
// Handler. It is safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics returns Metrics registered on a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_requests_total", Help: "Requests handled, by operation and user.",
		}, []string{"op", "user_id"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_request_errors_total", Help: "Requests that failed, by operation and user.",
		}, []string{"op", "user_id"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shop_request_duration_seconds", Help: "Time to handle a request, by operation and user.",
			Buckets: LatencyBuckets,
		}, []string{"op", "user_id"}),
	}
	m.registry.MustRegister(m.requests, m.errors, m.latency)
	return m
}

// Observe records one request of operation op by the user userID that took d
// and failed with err (nil if it did not).
func (m *Metrics) Observe(op string, userID int64, d time.Duration, err error) {
	user := strconv.FormatInt(userID, 10)
	op = strings.ToValidUTF8(op, "\uFFFD") // Prometheus panics on a label that is not UTF-8
	m.requests.WithLabelValues(op, user).Inc()
	if err != nil {
		m.errors.WithLabelValues(op, user).Inc()
	}
	m.latency.WithLabelValues(op, user).Observe(d.Seconds())
}

// Registry returns the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler returns the handler serving the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Series returns how many time series the registry holds, as a Prometheus
// server storing them would count: one per counter label set, and for each
// histogram label set one per bucket plus +Inf, _sum and _count.
func (m *Metrics) Series() (int, error) {
	families, err := m.registry.Gather()
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
