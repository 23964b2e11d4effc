package observability

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// WriteWaterfall writes spans to w as a tree, a line per span, children
// under their parent in the order they started, each with its duration and a
// bar showing when it ran within its trace. A database span shows its SQL.
// Spans whose parent is not among spans are roots.
func WriteWaterfall(w io.Writer, spans []sdktrace.ReadOnlySpan) error {
	const barWidth = 40
	const labelWidth = 64
	ids := make(map[trace.SpanID]bool, len(spans))
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	children := make(map[trace.SpanID][]sdktrace.ReadOnlySpan)
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if p := s.Parent(); p.IsValid() && ids[p.SpanID()] {
			children[p.SpanID()] = append(children[p.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) }
	slices.SortFunc(roots, byStart)
	for _, c := range children {
		slices.SortFunc(c, byStart)
	}

	seen := make(map[sdktrace.ReadOnlySpan]bool, len(spans))
	for _, root := range roots {
		begin, finish := root.StartTime(), root.EndTime()
		total := max(finish.Sub(begin), time.Nanosecond)
		var walk func(s sdktrace.ReadOnlySpan, depth int) error
		walk = func(s sdktrace.ReadOnlySpan, depth int) error {
			if seen[s] {
				return nil // a span id twice among spans: its subtree is written once
			}
			seen[s] = true
			label := strings.Repeat("  ", depth) + spanLabel(s)
			if runes := []rune(label); len(runes) > labelWidth { // never half a character
				label = string(runes[:labelWidth-1]) + "…"
			}
			from := int(int64(barWidth) * int64(s.StartTime().Sub(begin)) / int64(total))
			to := int(int64(barWidth) * int64(s.EndTime().Sub(begin)) / int64(total))
			from, to = min(max(from, 0), barWidth-1), min(max(to, from+1), barWidth)
			bar := strings.Repeat(" ", from) + strings.Repeat("█", to-from) + strings.Repeat(" ", barWidth-to)
			d := s.EndTime().Sub(s.StartTime())
			if _, err := fmt.Fprintf(w, "%-*s %9s |%s|\n", labelWidth, label, d.Round(time.Microsecond), bar); err != nil {
				return err
			}
			for _, c := range children[s.SpanContext().SpanID()] {
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(root, 0); err != nil {
			return err
		}
	}
	return nil
}

// spanLabel is the span's name, or for a database span its SQL on one line.
func spanLabel(s sdktrace.ReadOnlySpan) string {
	for _, a := range s.Attributes() {
		if a.Key == AttrDBQuery {
			return strings.Join(strings.Fields(a.Value.AsString()), " ")
		}
	}
	if s.Name() == "BATCH" {
		return fmt.Sprintf("BATCH of %d", len(s.Events()))
	}
	return s.Name()
}

// CountSpans returns how many of spans have each name, database spans under
// their operation (SELECT, INSERT, BATCH, …).
func CountSpans(spans []sdktrace.ReadOnlySpan) map[string]int {
	counts := make(map[string]int)
	for _, s := range spans {
		counts[s.Name()]++
	}
	return counts
}
