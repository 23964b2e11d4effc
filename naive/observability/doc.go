// Package observability places an order and tells the user the way that works
// first: the steps run, and log.Printf says what happened in a sentence.
// Its cost is one formatted line per step, and no way to tell, when a
// request is slow, which step or which query took the time.
//
// Its Metrics label each request with the user's id, the first thing one
// writes to see "who is slow": a new set of series per user, without bound.
//
// Compare with works-vs-scales/scalable/observability, which traces each step and
// query, logs JSON carrying the trace id, and bounds its metrics' labels.
package observability
