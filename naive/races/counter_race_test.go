//go:build race

// This test exists only under the race detector (go test -race, as CI runs
// it): without it there is nothing to judge the naive counter's race by.

package races

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// raceChild, set in a child's environment, makes TestRaceDetectorCatchesCounter
// be the racy child instead of the parent that judges it.
const raceChild = "WORKSHOP_COUNTER_RACE_CHILD"

// TestRaceDetectorCatchesCounter runs two goroutines that count on one
// Counter in a child process, and asserts that the race detector stops it
// with a report naming Counter.Add. The race is certain, not timing: the two
// goroutines' adds are not ordered by any synchronisation, which is what the
// detector looks for, whether or not an increment was lost this time.
func TestRaceDetectorCatchesCounter(t *testing.T) {
	if os.Getenv(raceChild) == "1" {
		var c Counter
		var adders sync.WaitGroup
		for range 2 {
			adders.Go(func() {
				for range 1000 {
					c.Add()
				}
			})
		}
		adders.Wait()
		return
	}
	child := exec.Command(os.Args[0], "-test.run=^TestRaceDetectorCatchesCounter$", "-test.count=1")
	child.Env = append(os.Environ(), raceChild+"=1")
	out, err := child.CombinedOutput()
	if err == nil {
		t.Fatalf("the child passed: the race detector saw no race\n%s", out)
	}
	if !strings.Contains(string(out), "WARNING: DATA RACE") || !strings.Contains(string(out), "(*Counter).Add") {
		t.Fatalf("the child failed, but not with a data race in Counter.Add:\n%s", out)
	}
}
