// Package overload serves the shop over HTTP and accepts every request: a
// goroutine per request, each queued on the pool for as long as its client
// waits. Past capacity it serves no request in time, however busy it looks;
// and its fan-out, a goroutine per item, leaks the goroutines of an
// abandoned request.
package overload
