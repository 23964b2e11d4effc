package races

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// Counter counts events, e.g. a product's page views, in memory, from any
// number of goroutines: one atomic add per event.
//
// Every core that adds takes the counter's cache line in turn; with many
// cores adding all the time, that line is the bottleneck, and
// [ShardedCounter] spreads it.
type Counter struct {
	n atomic.Int64
}

// Add counts one event.
func (c *Counter) Add() { c.n.Add(1) }

// Value returns the events counted.
func (c *Counter) Value() int64 { return c.n.Load() }

// MutexCounter is [Counter] with a mutex: as correct, and the way to go when
// more than one number must change together.
type MutexCounter struct {
	mu sync.Mutex
	n  int64
}

// Add counts one event.
func (c *MutexCounter) Add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

// Value returns the events counted.
func (c *MutexCounter) Value() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// ShardedCounter is [Counter] split into a shard per CPU, each on a cache
// line of its own: an add goes to a random shard, so cores rarely share a
// line. Value adds up the shards: it costs a read per shard, and sees adds
// that run meanwhile or not.
//
// The zero value is not ready: use [NewShardedCounter].
type ShardedCounter struct {
	shards []paddedInt64
}

// paddedInt64 fills a 128-byte line pair, so that no two shards share one
// (some CPUs fetch lines in pairs).
type paddedInt64 struct {
	n atomic.Int64
	_ [120]byte
}

// NewShardedCounter returns a counter with a shard per CPU.
func NewShardedCounter() *ShardedCounter {
	return &ShardedCounter{shards: make([]paddedInt64, runtime.GOMAXPROCS(0))}
}

// Add counts one event.
func (c *ShardedCounter) Add() { c.shards[rand.N(len(c.shards))].n.Add(1) }

// Value returns the events counted.
func (c *ShardedCounter) Value() int64 {
	var sum int64
	for i := range c.shards {
		sum += c.shards[i].n.Load()
	}
	return sum
}
