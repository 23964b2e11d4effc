package observability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"works-vs-scales/scalable/observability"
)

func TestLoggerAddsTraceAndSpanIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var out bytes.Buffer
	log := observability.NewLogger(&out, slog.LevelInfo)

	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	log.InfoContext(ctx, "in a span", "user_id", 7)
	span.End()
	log.InfoContext(context.Background(), "no span")
	log.DebugContext(ctx, "below the level")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), out.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if got, want := first["trace_id"], span.SpanContext().TraceID().String(); got != want {
		t.Errorf("trace_id = %v, want %v", got, want)
	}
	if got, want := first["span_id"], span.SpanContext().SpanID().String(); got != want {
		t.Errorf("span_id = %v, want %v", got, want)
	}
	if _, ok := second["trace_id"]; ok {
		t.Errorf("a record with no span has a trace_id: %s", lines[1])
	}
}

func TestMetricsSeriesDoNotGrowWithUsers(t *testing.T) {
	m := observability.NewMetrics()
	for user := range int64(1000) {
		m.Observe("ProcessOrder", user, time.Millisecond, nil)
	}
	m.Observe("ProcessOrder", 1, time.Millisecond, errors.New("boom"))
	series, err := m.Series()
	if err != nil {
		t.Fatal(err)
	}
	want := 1 + 1 + len(observability.LatencyBuckets) + 3 // requests, errors, histogram
	if series != want {
		t.Errorf("series after 1000 users = %d, want %d", series, want)
	}
}

func TestMetricsHandlerServesInstrumentedRoutes(t *testing.T) {
	m := observability.NewMetrics()
	failing := m.Instrument("GET /fail", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	failing.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/fail", nil))

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`shop_requests_total{op="GET /fail"} 1`,
		`shop_request_errors_total{op="GET /fail"} 1`,
		`shop_request_duration_seconds_count{op="GET /fail"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestInstrumentCountsShedsApartFromErrors(t *testing.T) {
	m := observability.NewMetrics()
	h := m.Instrument("GET /x", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("answer") {
		case "shed":
			observability.Shed(r.Context()) // admission control refusing on purpose
			http.Error(w, "at capacity", http.StatusServiceUnavailable)
		case "limited":
			observability.Shed(r.Context())
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "down":
			http.Error(w, "database down", http.StatusServiceUnavailable)
		case "odd":
			w.WriteHeader(999)
		case "missing":
			http.Error(w, "no", http.StatusNotFound)
		default:
			w.Write([]byte("ok"))
		}
	}))
	for _, answer := range []string{"ok", "ok", "shed", "shed", "limited", "down", "odd", "missing"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x?answer="+answer, nil))
	}
	observability.Shed(t.Context()) // outside Instrument: nothing to mark, no panic

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`shop_requests_total{op="GET /x"} 8`,
		`shop_requests_shed_total{op="GET /x"} 3`,
		`shop_request_errors_total{op="GET /x"} 2`, // the database down and the 999, not the sheds
		`shop_responses_total{op="GET /x",status="2xx"} 2`,
		`shop_responses_total{op="GET /x",status="4xx"} 2`,
		`shop_responses_total{op="GET /x",status="5xx"} 3`,
		`shop_responses_total{op="GET /x",status="other"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// TestInstrumentCountsAnAbandonedRequestAsCanceled: a request whose client
// goes away while the handler waits, and which the handler then leaves
// unanswered (as the service's handlers do: nobody is left to read it), is
// counted under "canceled", neither 2xx (net/http's implicit 200 was never
// sent) nor an error; a handler that writes nothing for a client still
// there answers 200, and one that answered before its client left, its
// status. Its span records no status code.
func TestInstrumentCountsAnAbandonedRequestAsCanceled(t *testing.T) {
	m := observability.NewMetrics()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	waiting := make(chan struct{})
	h := observability.TraceRequests(tp, "GET /x", m.Instrument("GET /x", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("answer") {
		case "abandoned":
			close(waiting)
			<-r.Context().Done() // the client has gone
		case "late":
			w.WriteHeader(http.StatusServiceUnavailable) // answered, then the client went
		default: // nothing written, the client still there: net/http sends 200
		}
	})))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, http.MethodGet, "/x?answer=abandoned", nil))
	}()
	<-waiting // in the handler, before any answer
	cancel()
	<-done
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x?answer=silent", nil))
	late, cancelLate := context.WithCancel(context.Background())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(late, http.MethodGet, "/x?answer=late", nil))
	cancelLate()

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`shop_requests_total{op="GET /x"} 3`,
		`shop_responses_total{op="GET /x",status="canceled"} 1`,
		`shop_responses_total{op="GET /x",status="2xx"} 1`, // the silent one, not the abandoned one
		`shop_responses_total{op="GET /x",status="5xx"} 1`,
		`shop_request_errors_total{op="GET /x"} 1`, // the 503 only
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	ended := spans.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans ended, want 3", len(ended))
	}
	for _, attr := range ended[0].Attributes() {
		if attr.Key == "http.response.status_code" {
			t.Errorf("the abandoned request's span has status code %v, want none", attr.Value.Emit())
		}
	}
	if !hasAttribute(ended[0], "error.type", observability.ClassCanceled) {
		t.Errorf("the abandoned request's span lacks error.type=%s: %v", observability.ClassCanceled, ended[0].Attributes())
	}
	if !hasAttribute(ended[1], "http.response.status_code", "200") {
		t.Errorf("the silent request's span lacks status code 200: %v", ended[1].Attributes())
	}
}

// hasAttribute reports whether span has the attribute key with the value
// value, as text.
func hasAttribute(span sdktrace.ReadOnlySpan, key, value string) bool {
	for _, attr := range span.Attributes() {
		if string(attr.Key) == key && attr.Value.Emit() == value {
			return true
		}
	}
	return false
}

func TestNewTracerProviderRefusesBadConfig(t *testing.T) {
	for _, fraction := range []float64{-0.1, 1.5} {
		if _, err := observability.NewTracerProvider(fraction, tracetest.NewNoopExporter()); err == nil {
			t.Errorf("NewTracerProvider(%v) did not fail", fraction)
		}
	}
	if _, err := observability.NewTracerProvider(1, nil); err == nil {
		t.Error("NewTracerProvider with no exporter did not fail")
	}
}
