package races

import "testing"

func TestCounterCountsOneCaller(t *testing.T) {
	var c Counter
	for range 5 {
		c.Add()
	}
	if got := c.Value(); got != 5 {
		t.Fatalf("Value() = %d after 5 adds", got)
	}
}
