package observability_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"works-vs-scales/scalable/observability"
)

func TestWaterfallPutsChildrenUnderTheirParentInOrder(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracer := tp.Tracer("test")
	begin := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return begin.Add(time.Duration(ms) * time.Millisecond) }

	ctx, root := tracer.Start(context.Background(), "request", trace.WithTimestamp(at(0)))
	stepCtx, step := tracer.Start(ctx, "step", trace.WithTimestamp(at(10)))
	_, query := tracer.Start(stepCtx, "SELECT", trace.WithTimestamp(at(20)))
	query.End(trace.WithTimestamp(at(30)))
	step.End(trace.WithTimestamp(at(50)))
	_, last := tracer.Start(ctx, "last", trace.WithTimestamp(at(60)))
	last.End(trace.WithTimestamp(at(100)))
	root.End(trace.WithTimestamp(at(100)))

	var out strings.Builder
	if err := observability.WriteWaterfall(&out, recorder.Ended()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), out.String())
	}
	for i, want := range []string{"request ", "  step ", "    SELECT ", "  last "} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], want)
		}
	}
	for i, want := range []string{"100ms", "40ms", "10ms", "40ms"} {
		if !strings.Contains(lines[i], " "+want+" |") {
			t.Errorf("line %d = %q, want the duration %s", i, lines[i], want)
		}
	}
	// 40 columns for 100 ms: the query ran from column 8 to 12.
	bar := lines[2][strings.Index(lines[2], "|")+1 : strings.LastIndex(lines[2], "|")]
	if want := strings.Repeat(" ", 8) + strings.Repeat("█", 4) + strings.Repeat(" ", 28); bar != want {
		t.Errorf("the query's bar is %q, want %q", bar, want)
	}
}

func TestWaterfallCutsLongLabelsBetweenCharacters(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	_, span := tp.Tracer("test").Start(context.Background(), strings.Repeat("é", 100))
	span.End()
	var out strings.Builder
	if err := observability.WriteWaterfall(&out, recorder.Ended()); err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(out.String()) {
		t.Errorf("not UTF-8: %q", out.String())
	}
	if label := strings.Repeat("é", 63) + "… "; !strings.HasPrefix(out.String(), label) {
		t.Errorf("got %q, want it to start with %q", out.String(), label)
	}
}

func TestQueryTracerWithNoProviderUsesTheGlobalOne(t *testing.T) {
	tracer := observability.NewQueryTracer(nil)
	ctx := tracer.TraceQueryStart(context.Background(), nil, pgx.TraceQueryStartData{SQL: "SELECT 1"})
	tracer.TraceQueryEnd(ctx, nil, pgx.TraceQueryEndData{}) // no panic: the global provider, a no-op one here
}

func ExampleMetrics_Series() {
	m := observability.NewMetrics()
	for user := range int64(10_000) {
		m.Observe("ProcessOrder", user, 3*time.Millisecond, nil)
	}
	series, err := m.Series()
	if err != nil {
		panic(err)
	}
	fmt.Println(series, "series after 10,000 users")
	// Output: 17 series after 10,000 users
}
