package main

import (
	"strings"
	"testing"

	"works-vs-scales/internal/report"
)

func TestTheCapacityHeadlineShowsEachWiringsMedianAndRange(t *testing.T) {
	const bench = `slo: p99 of successes <= 100ms, errors + sheds + timeouts <= 1%
rtt-added: 1ms
BenchmarkCapacity/impl=naive 	1	100 capacity-rps	50 p99-at-capacity-ms	1 knee-found
BenchmarkCapacity/impl=page 	1	200 capacity-rps	50 p99-at-capacity-ms	0 knee-found
BenchmarkCapacity/impl=scalable 	1	800 capacity-rps	50 p99-at-capacity-ms	1 knee-found
BenchmarkCapacity/impl=naive 	1	200 capacity-rps	50 p99-at-capacity-ms	1 knee-found
BenchmarkCapacity/impl=page 	1	400 capacity-rps	50 p99-at-capacity-ms	1 knee-found
BenchmarkCapacity/impl=scalable 	1	1600 capacity-rps	50 p99-at-capacity-ms	1 knee-found
BenchmarkCapacity/impl=naive 	1	200 capacity-rps	50 p99-at-capacity-ms	1 knee-found
BenchmarkCapacity/impl=page 	1	400 capacity-rps	50 p99-at-capacity-ms	1 knee-found
BenchmarkCapacity/impl=scalable 	1	1600 capacity-rps	50 p99-at-capacity-ms	1 knee-found
`
	r, err := report.Parse(strings.NewReader(bench), "capacity.bench")
	if err != nil {
		t.Fatal(err)
	}
	h := headline{lesson: "17. Capstone", link: "lessons/17-capstone.md", results: "capacity", benchmark: "Capacity"}
	line, err := capacityHeadline(h, r)
	if err != nil {
		t.Fatal(err)
	}
	want := "| [17. Capstone](lessons/17-capstone.md) | capacity at the SLO (p99 of successes <= 100ms, errors + sheds + timeouts <= 1%); page: ≥ 400/s (200–400) | naive: 200/s (100–200) | scalable: 1,600/s (800–1,600) | 8.0× more |  | capacity-rps, median (min–max) of 3 runs, RTT +1ms |\n"
	if line != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
	// A scales wiring whose ramp ended before its knee: its capacity is a
	// lower bound, and so is the ratio.
	atLeast := strings.ReplaceAll(bench, "1600 capacity-rps	50 p99-at-capacity-ms	1", "1600 capacity-rps	50 p99-at-capacity-ms	0")
	r, _ = report.Parse(strings.NewReader(atLeast), "capacity.bench")
	if line, _ := capacityHeadline(h, r); !strings.Contains(line, "| scalable: ≥ 1,600/s (800–1,600) | ≥ 8.0× more |") {
		t.Errorf("a lower bound: %s", line)
	}
	// A wiring whose every run's generator fell behind has no capacity.
	behind := strings.ReplaceAll(strings.ReplaceAll(bench, "800 capacity-rps	50 p99-at-capacity-ms	1", "0 capacity-rps	0 p99-at-capacity-ms	0"), "1600 capacity-rps	50 p99-at-capacity-ms	1", "0 capacity-rps	0 p99-at-capacity-ms	0")
	r, _ = report.Parse(strings.NewReader(behind), "capacity.bench")
	if line, _ := capacityHeadline(h, r); !strings.Contains(line, "scalable: not measured (the generator fell behind) | "+report.NoDifference) {
		t.Errorf("no capacity measured: %s", line)
	}
	// Ranges that overlap: no ratio.
	overlapping := strings.Replace(bench, "1600 capacity-rps", "150 capacity-rps", 1)
	r, _ = report.Parse(strings.NewReader(overlapping), "capacity.bench")
	if line, _ := capacityHeadline(h, r); !strings.Contains(line, "| "+report.NoDifference+" |") {
		t.Errorf("overlapping ranges: %s", line)
	}
}

func TestALowerBoundRatioIsRoundedDown(t *testing.T) {
	for r, want := range map[float64]string{10.67: "10", 8.09: "8.0", 1600.0 / 150: "10", 2.99: "2.9", 12: "12"} {
		if got := formatRatioFloor(r); got != want {
			t.Errorf("formatRatioFloor(%v) = %s, want %s", r, got, want)
		}
	}
}

func TestAHeadlineCapacityAtTheLaddersTopIsALowerBound(t *testing.T) {
	const bench = `BenchmarkPaymentCliff/impl=naive 	1	450 capacity-per-s	1 knee-found
BenchmarkPaymentCliff/impl=scalable 	1	1600 capacity-per-s	0 knee-found
BenchmarkPaymentCliff/impl=naive 	1	450 capacity-per-s	1 knee-found
BenchmarkPaymentCliff/impl=scalable 	1	1600 capacity-per-s	0 knee-found
`
	r, err := report.Parse(strings.NewReader(bench), "cliff.bench")
	if err != nil {
		t.Fatal(err)
	}
	b := r.Find("PaymentCliff")
	if got := atLeast(b, "scalable", 0, "capacity-per-s") + b.FormatMedian("scalable", 0, "capacity-per-s"); got != "≥ 1,600" {
		t.Errorf("scalable's capacity: %s", got)
	}
	if got := atLeast(b, "naive", 0, "capacity-per-s"); got != "" {
		t.Errorf("naive's capacity, its knee found: %q", got)
	}
	if got := headlineRatio(b, "naive", "scalable", 0, "capacity-per-s", 450, 1600); got != "≥ 3.5× more" {
		t.Errorf("the ratio over a lower bound: %s", got)
	}
	if got := headlineRatio(b, "scalable", "naive", 0, "capacity-per-s", 1600, 450); got != "≤ 0.3× more" {
		t.Errorf("a lower bound above the other's value: %s", got)
	}
}
