package load

import (
	"math"
	"testing"
	"time"
)

func TestScheduledNeverOverflows(t *testing.T) {
	for _, c := range []struct {
		rate int
		d    time.Duration
		want int
	}{
		{100, 200 * time.Millisecond, 20},
		{1, 999 * time.Millisecond, 0},
		{3, 1500 * time.Millisecond, 4},
		{MaxRate, time.Nanosecond, 0},
		{MaxRate, time.Hour, MaxRate * 3600},
		// rate × d in nanoseconds is past math.MaxInt64 from about 25
		// hours at MaxRate.
		{MaxRate, math.MaxInt64, MaxRate*(math.MaxInt64/int(time.Second)) + MaxRate*(math.MaxInt64%int(time.Second))/int(time.Second)},
	} {
		if got := scheduled(c.rate, c.d); got != c.want || got < 0 {
			t.Errorf("scheduled(%d, %v) = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
}
