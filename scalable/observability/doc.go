// Package observability places an order and tells the user, instrumented so
// that a slow request explains itself: JSON logs carrying the trace and span
// ids of the request, an OpenTelemetry span per step and per database query,
// and Prometheus metrics whose labels are bounded.
//
// Its cost is a few microseconds and a few dozen allocations per request when
// every request is traced (see lesson 15's results), and much less when a
// fraction is sampled.
//
// The pieces are usable on their own, as the capstone service does:
// [NewLogger] (slog with trace ids), [NewQueryTracer] (a pgx tracer making a
// span per query and per batch), [NewMetrics] (request, error and latency
// metrics, served by [Metrics.Handler] on /metrics; [Metrics.Instrument] adds
// responses by status class, and counts the requests a handler marks with
// [Shed] apart from errors) and [NewTracerProvider].
//
// Compare with works-vs-scales/naive/observability, which logs strings.
package observability
