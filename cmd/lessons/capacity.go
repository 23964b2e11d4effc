package main

import (
	"fmt"
	"math"
	"strings"

	"works-vs-scales/internal/report"
)

// capacityHeadlines are the lessons whose headline is a capacity at a
// service level objective, per version (cmd/load's BenchmarkCapacity): the
// headline's works and scales are the first and the last version, the
// versions between are named beside the objective.
var capacityHeadlines = map[string]bool{"17. Capstone": true}

// kneeCharts are the results files whose ramp of rates is also charted in
// these units against the rate offered, a line per version: where p99
// turns up and goodput stops following the rate is the knee.
var kneeCharts = map[string][]struct{ unit, file string }{
	"17-capstone":        {{"p99-ms", "p99"}, {"goodput-rps", "goodput"}},
	"17-capstone-rtt1ms": {{"p99-ms", "p99"}, {"goodput-rps", "goodput"}},
}

// capacityHeadline writes a headline line of capacities: each version's
// median over the runs, with its range; a ratio of the last to the first
// only where their ranges do not overlap.
func capacityHeadline(h headline, r *report.Report) (string, error) {
	b := r.Find(h.benchmark)
	if b == nil || len(b.Impls) < 2 {
		return "", fmt.Errorf("headline of %s: no capacities of two versions or more (Benchmark%s/impl=…) in %s.bench", h.lesson, h.benchmark, h.results)
	}
	caps := make([]report.Capacity, len(b.Impls))
	for i, impl := range b.Impls {
		c, ok := b.Capacity(impl)
		if !ok {
			return "", fmt.Errorf("headline of %s: no capacity-rps of %s in %s.bench", h.lesson, impl, h.results)
		}
		caps[i] = c
	}
	works, scales := caps[0], caps[len(caps)-1]
	ratio := report.NoDifference
	switch {
	case works.Hi < scales.Lo && works.Median > 0 && !works.AtLeast && scales.AtLeast:
		// scales's is a lower bound (its ramp ended first): so is the ratio.
		ratio = "≥ " + formatRatioFloor(scales.Median/works.Median) + "× more"
	case works.Hi < scales.Lo && works.Median > 0 && !works.AtLeast:
		ratio = report.FormatRatio(scales.Median/works.Median) + "× more"
	case works.Hi < scales.Lo && works.Median == 0:
		ratio = "from none"
	}
	var between []string
	for i := 1; i < len(b.Impls)-1; i++ {
		between = append(between, fmt.Sprintf("%s: %s", b.Impls[i], caps[i]))
	}
	at := "capacity at the SLO (" + r.ConfigValue("slo") + ")"
	if len(between) > 0 {
		at += "; " + strings.Join(between, ", ")
	}
	rtt := r.ConfigValue("rtt-added")
	if rtt == "" || rtt == "none" {
		rtt = "loopback"
	} else {
		rtt = "RTT +" + rtt
	}
	return fmt.Sprintf("| [%s](%s) | %s | %s: %s | %s: %s | %s |  | capacity-rps, median (min–max) of %d runs, %s |\n",
		h.lesson, h.link, at, b.Impls[0], works, b.Impls[len(b.Impls)-1], scales, ratio, works.Runs, rtt), nil
}

// formatRatioFloor writes a ratio that is a lower bound as report.FormatRatio
// does, rounded down, not to the nearest: 10.67 is "≥ 10×", never "≥ 11×".
func formatRatioFloor(r float64) string {
	if r >= 10 {
		return report.FormatRatio(math.Floor(r))
	}
	return report.FormatRatio(math.Floor(r*10) / 10)
}

// formatRatioCeil writes a ratio that is an upper bound as
// report.FormatRatio does, rounded up, not to the nearest: 0.28 is "≤ 0.3×",
// never "≤ 0.2×".
func formatRatioCeil(r float64) string {
	if r >= 10 {
		return report.FormatRatio(math.Ceil(r))
	}
	return report.FormatRatio(math.Ceil(r*10) / 10)
}
