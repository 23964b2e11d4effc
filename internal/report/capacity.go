package report

import (
	"fmt"
	"slices"
)

// Capacity is a version's capacity at a service level objective over its
// runs, as cmd/load writes it (BenchmarkCapacity/impl=NAME, a line a run, in
// capacity-rps and knee-found): the median rate and its range over the
// runs, and whether it is only a lower bound (a run whose ramp ended, or
// whose generator fell behind, before the service missed the objective).
type Capacity struct {
	Median, Lo, Hi float64
	Runs           int
	AtLeast        bool
}

// Capacity returns impl's capacity, if the benchmark has one.
func (b *Benchmark) Capacity(impl string) (Capacity, bool) {
	rates := slices.Clone(b.samples[sample{impl, 0, "capacity-rps"}])
	if len(rates) == 0 {
		return Capacity{}, false
	}
	median, _ := b.Median(impl, 0, "capacity-rps")
	c := Capacity{Median: median, Lo: slices.Min(rates), Hi: slices.Max(rates), Runs: len(rates)}
	for _, knee := range b.samples[sample{impl, 0, "knee-found"}] {
		if knee == 0 {
			c.AtLeast = true
		}
	}
	return c, true
}

// String writes the capacity as the headline shows it: "200/s (100–200)",
// "≥ 400/s (200–400)" for a lower bound; "not measured" when every run's
// generator fell behind before a rate the service met.
func (c Capacity) String() string {
	if c.AtLeast && c.Hi == 0 {
		return "not measured (the generator fell behind)"
	}
	at := ""
	if c.AtLeast {
		at = "≥ "
	}
	return fmt.Sprintf("%s%s/s (%s–%s)", at, formatCount(c.Median), formatCount(c.Lo), formatCount(c.Hi))
}
