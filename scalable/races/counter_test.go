package races

import (
	"sync"
	"testing"
)

// TestCountersCountEveryAdd adds from many goroutines at once; run with -race,
// it also proves the counters free of data races.
func TestCountersCountEveryAdd(t *testing.T) {
	const goroutines, adds = 8, 1000
	counters := map[string]interface {
		Add()
		Value() int64
	}{
		"atomic":  new(Counter),
		"mutex":   new(MutexCounter),
		"sharded": NewShardedCounter(),
	}
	for name, c := range counters {
		t.Run(name, func(t *testing.T) {
			start := make(chan struct{})
			var adders sync.WaitGroup
			for range goroutines {
				adders.Go(func() {
					<-start
					for range adds {
						c.Add()
					}
				})
			}
			close(start)
			adders.Wait()
			if got := c.Value(); got != goroutines*adds {
				t.Fatalf("Value() = %d after %d adds", got, goroutines*adds)
			}
		})
	}
}
