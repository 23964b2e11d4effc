package races

// Counter counts events, e.g. a product's page views, in memory.
//
// Add reads n, adds one and writes it back: two goroutines that do so at
// once both write the same value, and one event is lost. go test -race
// reports it; nothing else does.
type Counter struct {
	n int64
}

// Add counts one event.
func (c *Counter) Add() { c.n++ }

// Value returns the events counted.
func (c *Counter) Value() int64 { return c.n }
