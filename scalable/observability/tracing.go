package observability

import (
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"works-vs-scales/shop"
)

// NewTracerProvider returns a tracer provider that records fraction of the
// traces that start here (0 none, 1 all; a request whose caller sampled it is
// always recorded, and one whose caller did not, never) and sends their spans
// to exporter in batches. The caller shuts it down, which flushes the batch.
//
// A fraction outside 0 to 1, or a nil exporter, is refused with
// shop.ErrInvalidConfig.
func NewTracerProvider(fraction float64, exporter sdktrace.SpanExporter) (*sdktrace.TracerProvider, error) {
	if !(fraction >= 0 && fraction <= 1) {
		return nil, fmt.Errorf("tracer provider sampling %v of traces: %w", fraction, shop.ErrInvalidConfig)
	}
	if exporter == nil {
		return nil, fmt.Errorf("tracer provider with no exporter: %w", shop.ErrInvalidConfig)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(fraction))),
		sdktrace.WithBatcher(exporter),
	), nil
}
