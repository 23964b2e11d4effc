package observability

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a logger writing JSON lines to w, from level up, each
// record carrying the trace_id and span_id of the span in the context it is
// logged with (use the ...Context methods: InfoContext, ErrorContext).
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(NewTraceHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})))
}

// TraceHandler is a slog.Handler that adds to each record the trace and span
// ids of the span in the record's context, then hands it to the next handler.
// A record logged without a recording span is passed on unchanged.
type TraceHandler struct {
	next slog.Handler
}

// NewTraceHandler returns a TraceHandler in front of next.
func NewTraceHandler(next slog.Handler) *TraceHandler { return &TraceHandler{next: next} }

// Enabled reports whether the next handler handles records at level; a
// disabled level costs one call and no allocation.
func (h *TraceHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds trace_id and span_id to r when ctx holds a valid span context.
func (h *TraceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a TraceHandler in front of the next handler with attrs.
func (h *TraceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &TraceHandler{next: h.next.WithAttrs(attrs)}
}

// WithGroup returns a TraceHandler in front of the next handler with the
// group. Like every attribute added to a record, the ids then go in the group.
func (h *TraceHandler) WithGroup(name string) slog.Handler {
	return &TraceHandler{next: h.next.WithGroup(name)}
}
