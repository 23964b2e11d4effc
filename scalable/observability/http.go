package observability

import (
	"net/http"

	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracePool returns a copy of cfg whose connections make a span for each
// query with a [QueryTracer], after whatever tracer cfg had (a query counter,
// a watch on the pool): both see every query.
func TracePool(cfg *pgxpool.Config, tp trace.TracerProvider) *pgxpool.Config {
	c := cfg.Copy()
	spans := NewQueryTracer(tp)
	if c.ConnConfig.Tracer == nil {
		c.ConnConfig.Tracer = spans
	} else {
		c.ConnConfig.Tracer = multitracer.New(c.ConnConfig.Tracer, spans)
	}
	return c
}

// TraceRequests starts a server span named after the route's pattern (never
// the URL: ids would make every span name unique) for each request, the
// parent of the spans of its queries, and ends it with the status written
// (none, and the error type "canceled", for a request left unanswered
// because its client had gone). A request whose trace is not sampled still
// gets a trace id, which the log records of [NewLogger] carry.
func TraceRequests(tp trace.TracerProvider, route string, next http.Handler) http.Handler {
	tracer := tp.Tracer("works-vs-scales/scalable/observability")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), route, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if !span.IsRecording() {
			return
		}
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", route),
		)
		if sw.canceled(r.Context()) {
			// Nothing was sent: no status to record, and no error of
			// the service's.
			span.SetAttributes(attribute.String("error.type", ClassCanceled))
			return
		}
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}
