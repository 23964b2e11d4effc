// Package overload is lesson 16's exercise: yours to change.
//
// Limit below is meant to keep a server within its capacity: at most
// concurrency requests served at once. As it stands it lets every request
// through, as net/http does, and past capacity they all queue. Make it serve
// at most concurrency requests at once, and refuse every other request at
// once, while those are served, with 503 Service Unavailable and a
// Retry-After header saying in how many seconds to try again. Then check:
//
//	go test -race -tags exercise -run '^TestExercise16$' ./bench/overload
//
// The check holds concurrency requests inside next, sends five more, and
// wants each refused at once; then lets the first ones finish and wants new
// requests served again. It runs under the race detector: each request is
// served on a goroutine of its own, and what Limit shares between them must
// be safe. One answer is Admit, in works-vs-scales/scalable/overload.
package overload

import (
	"fmt"
	"net/http"

	"works-vs-scales/shop"
)

// Limit returns next, serving at most concurrency requests at once. A
// concurrency below 1 is an error wrapping shop.ErrInvalidConfig.
func Limit(next http.Handler, concurrency int) (http.Handler, error) {
	if concurrency < 1 {
		return nil, fmt.Errorf("a limit of %d requests at once: %w", concurrency, shop.ErrInvalidConfig)
	}
	return next, nil
}
