package load

import (
	"testing"
	"time"
)

func TestLatenessCountsRequestsThatLeftAfterTheirTime(t *testing.T) {
	began := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	interval := 10 * time.Millisecond
	at := func(seq uint64, late time.Duration) sent {
		return sent{seq, began.Add(time.Duration(seq)*interval + late)}
	}
	// Out of order, as answers come: seq 3 left 50 ms late, seq 2 exactly
	// MaxLag late (on time enough), the rest on time.
	requests := []sent{at(2, MaxLag), at(0, 0), at(3, 50*time.Millisecond), at(1, time.Millisecond), at(4, 0)}
	late, lag := lateness(requests, interval)
	if late != 1 || lag != 50*time.Millisecond {
		t.Errorf("late %d, lag %v; want 1, 50ms", late, lag)
	}
	if late, lag := lateness(nil, interval); late != 0 || lag != 0 {
		t.Errorf("no requests: late %d, lag %v", late, lag)
	}
}

func TestKeptSchedule(t *testing.T) {
	for _, c := range []struct {
		name string
		step Step
		want bool
	}{
		{"every request on time", Step{Scheduled: 100, Requests: 100}, true},
		{"one late in a hundred", Step{Scheduled: 100, Requests: 100, Late: 1}, true},
		{"one late in twenty", Step{Scheduled: 20, Requests: 20, Late: 1}, true},
		{"two late in twenty", Step{Scheduled: 20, Requests: 20, Late: 2}, false},
		{"two late in a hundred", Step{Scheduled: 100, Requests: 100, Late: 2}, false},
		{"one short of a hundred", Step{Scheduled: 100, Requests: 99}, true},
		{"two short of a hundred", Step{Scheduled: 100, Requests: 98}, false},
		{"a latency measured past the timeout", Step{Scheduled: 100, Requests: 100, Overdue: 1}, false},
		{"a closed loop", Step{Requests: 5}, true},
	} {
		if got := c.step.KeptSchedule(); got != c.want {
			t.Errorf("%s: KeptSchedule() = %v, want %v", c.name, got, c.want)
		}
	}
}
