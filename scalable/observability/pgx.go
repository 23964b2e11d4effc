package observability

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of the database spans, from OpenTelemetry's semantic
// conventions for database clients.
const (
	AttrDBSystem    = attribute.Key("db.system.name")            // "postgresql"
	AttrDBOperation = attribute.Key("db.operation.name")         // SELECT, INSERT, BATCH, …
	AttrDBQuery     = attribute.Key("db.query.text")             // the SQL, with $n placeholders, never the arguments
	AttrDBRows      = attribute.Key("db.response.returned_rows") // rows returned or changed
	AttrDBBatchSize = attribute.Key("db.operation.batch.size")   // statements in a batch
)

// QueryTracer is a pgx tracer (pgx.QueryTracer and pgx.BatchTracer) that
// makes a span for each query, a child of the span in the query's context,
// and one span for each batch, with an event per statement queued in it.
//
// It is what github.com/exaring/otelpgx does, cut down to what the workshop
// needs, in one file a reader can follow. To run it with other tracers on one
// pool, combine them with github.com/jackc/pgx/v5/multitracer.
type QueryTracer struct {
	tracer trace.Tracer
}

var (
	_ pgx.QueryTracer = (*QueryTracer)(nil)
	_ pgx.BatchTracer = (*QueryTracer)(nil)
)

// NewQueryTracer returns a QueryTracer whose spans come from tp; nil means
// the global tracer provider (otel.GetTracerProvider).
func NewQueryTracer(tp trace.TracerProvider) *QueryTracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &QueryTracer{tracer: tp.Tracer("works-vs-scales/scalable/observability/pgx")}
}

// TraceQueryStart starts the query's span, named after its first keyword.
func (t *QueryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	op := operation(data.SQL)
	ctx, span := t.tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(AttrDBSystem.String("postgresql"), AttrDBOperation.String(op), AttrDBQuery.String(data.SQL))
	}
	return ctx
}

// TraceQueryEnd ends the query's span, with its rows or its error.
func (t *QueryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	end(span, data.CommandTag.RowsAffected(), data.Err)
}

// TraceBatchStart starts the batch's span.
func (t *QueryTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	ctx, span := t.tracer.Start(ctx, "BATCH", trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() && data.Batch != nil {
		span.SetAttributes(AttrDBSystem.String("postgresql"), AttrDBOperation.String("BATCH"), AttrDBBatchSize.Int(data.Batch.Len()))
	}
	return ctx
}

// TraceBatchQuery adds an event for one statement of the batch.
func (t *QueryTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{AttrDBQuery.String(data.SQL), AttrDBRows.Int64(data.CommandTag.RowsAffected())}
	if data.Err != nil {
		attrs = append(attrs, attribute.String("error", data.Err.Error()))
	}
	span.AddEvent(operation(data.SQL), trace.WithAttributes(attrs...))
}

// TraceBatchEnd ends the batch's span.
func (t *QueryTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	end(trace.SpanFromContext(ctx), -1, data.Err)
}

func end(span trace.Span, rows int64, err error) {
	if span.IsRecording() {
		if rows >= 0 {
			span.SetAttributes(AttrDBRows.Int64(rows))
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// operation returns the first keyword of sql, upper-cased: SELECT, INSERT, …
func operation(sql string) string {
	sql = strings.TrimSpace(sql)
	if i := strings.IndexAny(sql, " \t\r\n("); i >= 0 {
		sql = sql[:i]
	}
	if sql == "" {
		return "QUERY"
	}
	return strings.ToUpper(sql)
}
