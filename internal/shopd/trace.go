package shopd

import (
	"net/http"

	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"works-vs-scales/scalable/observe"
)

// tracedDB returns a copy of cfg whose connections make a span for each
// query with observe.QueryTracer, after whatever tracer cfg had (a query
// counter, a watch on the pool): both see every query.
func tracedDB(cfg *pgxpool.Config, tp trace.TracerProvider) *pgxpool.Config {
	c := cfg.Copy()
	spans := observe.NewQueryTracer(tp)
	if c.ConnConfig.Tracer == nil {
		c.ConnConfig.Tracer = spans
	} else {
		c.ConnConfig.Tracer = multitracer.New(c.ConnConfig.Tracer, spans)
	}
	return c
}

// traced starts a server span named after the route's pattern for each
// request, the parent of the spans of its queries, and ends it with the
// status written. A request whose trace is not sampled still gets a trace id,
// which its log records carry.
func traced(tp trace.TracerProvider, pattern string, next http.Handler) http.Handler {
	tracer := tp.Tracer("works-vs-scales/internal/shopd")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), pattern, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if span.IsRecording() {
			span.SetAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("http.route", pattern),
				attribute.Int("http.response.status_code", sw.status),
			)
			if sw.status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(sw.status))
			}
		}
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
