// Package overload serves the shop over HTTP and admits only what it can
// serve in time: as many requests at once as its pool has connections, a
// short queue with a deadline, the rest refused at once with 503 and
// Retry-After, and a rate per client (Admit). Past capacity its goodput
// stays at capacity; the cost is requests refused that a slower answer might
// have satisfied. Its fan-out runs at most a pool's worth of goroutines, and
// leaves none behind (errgroup with SetLimit).
package overload
