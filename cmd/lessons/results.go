package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"works-vs-scales/internal/report"
)

// resultsDir holds the raw benchmark output (*.bench) and what is made from it.
const resultsDir = "lessons/results"

// artifact is a file made from a results file.
type artifact struct {
	path string
	text []byte
}

// resultArtifacts makes, for every lessons/results/*.bench, its table
// (NAME.md) and a chart per benchmark with sizes (NAME-BENCHMARK.svg), and
// the README's headline table (headline.md).
func resultArtifacts(root string) ([]artifact, error) {
	benches, err := filepath.Glob(filepath.Join(root, resultsDir, "*.bench"))
	if err != nil {
		return nil, err
	}
	var made []artifact
	reports := make(map[string]*report.Report)
	for _, path := range benches {
		r, err := readReport(path)
		if err != nil {
			return nil, err
		}
		base := strings.TrimSuffix(filepath.Base(path), ".bench")
		reports[base] = r
		var table bytes.Buffer
		source := filepath.ToSlash(filepath.Join(resultsDir, filepath.Base(path)))
		if err := r.WriteMarkdown(&table, source); err != nil {
			return nil, err
		}
		made = append(made, artifact{filepath.Join(root, resultsDir, base+".md"), table.Bytes()})
		for _, b := range r.Benchmarks {
			if !b.Grows() {
				continue
			}
			svg, err := b.ChartSVG(r.Machine())
			if err != nil {
				return nil, err
			}
			made = append(made, artifact{filepath.Join(root, resultsDir, base+"-"+b.Name+".svg"), svg})
			for _, knee := range kneeCharts[base] {
				svg, err := b.ChartUnitSVG(r.Machine(), knee.unit)
				if err != nil {
					return nil, err
				}
				made = append(made, artifact{filepath.Join(root, resultsDir, base+"-"+b.Name+"-"+knee.file+".svg"), svg})
			}
			for _, rate := range chartedRates {
				if !slices.Contains(b.Units, rate.unit) {
					continue
				}
				svg, err := b.ChartUnitSVG(r.Machine(), rate.unit)
				if err != nil {
					return nil, err
				}
				made = append(made, artifact{filepath.Join(root, resultsDir, base+"-"+b.Name+"-"+rate.file+".svg"), svg})
			}
		}
	}
	headline, err := headlineTable(reports)
	if err != nil {
		return nil, err
	}
	return append(made, artifact{filepath.Join(root, resultsDir, "headline.md"), headline}), nil
}

// chartedRates are the units, besides time, that a benchmark with sizes is
// charted in when it reports them (lesson 14: rows/s against rows).
var chartedRates = []struct{ unit, file string }{{"rows/s", "rows-per-s"}}

func readReport(path string) (*report.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := report.Parse(f, filepath.Base(path))
	if err != nil {
		return nil, err
	}
	for _, line := range r.Unplaced {
		fmt.Fprintf(os.Stderr, "lessons: %s: not placed: %s\n", path, line)
	}
	return r, nil
}

// headline is the README's line for a lesson: the result that tells it.
type headline struct {
	lesson, link string
	results      string // the base name of a .bench file
	benchmark    string
	unit         string // "sec/op", or a lesson's own metric; "wrong-rows+sec/op" shows both, growth of the first
	works        string // the implementations compared; "" for the first
	scales       string // and the last of the benchmark
	noGrowth     bool   // the growth says nothing here (a version capped by a deadline)
}

var headlines = []headline{
	{"1. N+1 queries", "lessons/01-n-plus-one.md", "01-n-plus-one-rtt1ms", "GetUserOrders", "sec/op", "", "", false},
	{"2. Pagination", "lessons/02-pagination.md", "02-pagination-large", "UserOrdersPage", "sec/op", "offset-nocount", "keyset", false},
	{"3. Indexes", "lessons/03-indexes.md", "03-indexes", "OldestPendingOrders", "sec/op", "", "", false},
	{"4. Streaming", "lessons/04-streaming.md", "04-export", "ExportOrders", "live-heap-bytes+sec/op", "naive", "stream", false},
	{"5. Nested loops", "lessons/05-nested-loops.md", "05-nested-loops", "FindDuplicates", "sec/op", "", "", false},
	{"6. Caching", "lessons/06-caching.md", "06-caching-rtt1ms", "GetProduct", "queries/op", "naive", "inprocess", false},
	{"7. Stampede", "lessons/07-stampede.md", "07-stampede", "BestSellers", "p50-ms+p99-ms+queries/op", "", "", false},
	{"8. Validation", "lessons/08-validation.md", "08-validation", "ProcessPayment", "wrong-rows+sec/op", "", "", false},
	{"9. Retries", "lessons/09-retries.md", "09-retries", "Pay", "charged-unrecorded-%", "naive", "scalable", false},
	{"10. Circuit breaker", "lessons/10-circuit-breaker.md", "10-circuit-breaker", "PayDuringOutage", "gateway-requests/op", "naive", "breaker", false},
	{"11. Bulkheads", "lessons/11-bulkheads.md", "11-bulkheads", "OrdersWhileSearchIsStuck", "errors-%+p99-ms", "", "", true},
	{"12. Races", "lessons/12-races.md", "12-races", "BuyHot", "oversold-units/op", "naive", "update", true},
	{"13. Connections", "lessons/13-connections.md", "13-connections-rate", "PaymentCliff", "capacity-per-s+little-cliff-per-s", "naive", "scalable", true}, // the cliff: the payment rate past which the fast query queues, measured beside Little's law's prediction
	{"14. Writes", "lessons/14-writes.md", "14-writes", "ImportOrders", "sec/op", "onetx", "copy", false},                                                   // beside one transaction: naive ÷ copy is mostly the disk's commit latency
	{"15. Observability", "lessons/15-observability.md", "15-observability", "ObserveMetrics", "scrape-bytes/op+sec/op+series", "naive", "scalable", false},
	{"16. Overload", "lessons/16-overload.md", "16-overload", "Overload", "goodput-rps+ok-p99-ms+refused-%+timeouts-%", "naive", "scalable", true},
	{"17. Capstone", "lessons/17-capstone.md", "17-capstone-rtt1ms", "Capacity", "capacity-rps", "naive", "scalable", true},
	{"18. Replicas", "lessons/18-replicas.md", "18-replicas", "ReadYourWrites", "stale-reads-%", "naive", "scalable", true},
	{"19. Partitioning", "lessons/19-partitioning.md", "19-partitioning", "Retention", "wal-bytes/op", "naive", "scalable", true},
	{"20. Migrations", "lessons/20-migrations.md", "20-migrations", "LockQueue", "during-p99-ms+during-errors-%", "naive", "scalable", true},
}

// inPlaceOfRatio says, for a headline's unit whose ratio is fixed by how the
// benchmark is built rather than measured, or means nothing, what stands in
// the ratio's place: keyed by the results file, the benchmark and the unit.
var inPlaceOfRatio = map[string]string{
	"04-export ExportOrders live-heap-bytes":              "grows with n by construction (naive holds every row)",
	"07-stampede BestSellers queries/op":                  "= callers, by construction",
	"15-observability ObserveMetrics series":              "= users × 17, by construction",
	"16-overload Overload refused-%":                      "503s at once, in place of timeouts",
	"13-connections-rate PaymentCliff little-cliff-per-s": "Little's law: connections ÷ hold time",
}

// higherIsBetter reports whether more of a unit is better (a rate served,
// rows per second): its ratio is scales over works, "4.4× more".
func higherIsBetter(unit string) bool {
	return strings.HasSuffix(unit, "-rps") || strings.HasSuffix(unit, "-per-s") || strings.HasSuffix(unit, "/s")
}

// headlineTable writes a line per lesson: at the largest size, the first
// implementation against the last, each median with its range, their ratio
// where their ranges do not overlap (see headlineRatio and inPlaceOfRatio),
// and how each grows over the top decade of sizes.
func headlineTable(reports map[string]*report.Report) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString("| lesson | at the largest size | works | scales | ratio | grows as (top decade) | of, with |\n|---|---|---|---|---|---|---|\n")
	for _, h := range headlines {
		r := reports[h.results]
		if r == nil {
			return nil, fmt.Errorf("headline of %s: no %s/%s.bench", h.lesson, resultsDir, h.results)
		}
		if capacityHeadlines[h.lesson] {
			line, err := capacityHeadline(h, r)
			if err != nil {
				return nil, err
			}
			out.WriteString(line)
			continue
		}
		b := r.Find(h.benchmark)
		if b == nil || len(b.Sizes) == 0 {
			return nil, fmt.Errorf("headline of %s: no benchmark %s in %s.bench", h.lesson, h.benchmark, h.results)
		}
		works, scales := b.Impls[0], b.Impls[len(b.Impls)-1]
		if h.works != "" {
			works, scales = h.works, h.scales
		}
		size := b.Sizes[len(b.Sizes)-1]
		units := strings.Split(h.unit, "+")
		var worksValues, scalesValues, ratios []string
		for _, unit := range units {
			worksValue, ok1 := b.Median(works, size, unit)
			scalesValue, ok2 := b.Median(scales, size, unit)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("headline of %s: no %s for %s and %s at %s=%v", h.lesson, unit, works, scales, b.SizeKey, size)
			}
			worksValues = append(worksValues, atLeast(b, works, size, unit)+b.FormatMedian(works, size, unit))
			scalesValues = append(scalesValues, atLeast(b, scales, size, unit)+b.FormatMedian(scales, size, unit))
			ratio := headlineRatio(b, works, scales, size, unit, worksValue, scalesValue)
			if note, ok := inPlaceOfRatio[h.results+" "+h.benchmark+" "+unit]; ok {
				ratio = note
			}
			ratios = append(ratios, ratio)
		}
		growth := ""
		if k1, ok := b.Exponent(works, units[0]); ok && !h.noGrowth {
			k2, _ := b.Exponent(scales, units[0])
			growth = fmt.Sprintf("n^%s against n^%s", report.FormatExponent(k1, 1), report.FormatExponent(k2, 1))
		}
		rtt := r.ConfigValue("rtt-added")
		if rtt == "" || rtt == "none" {
			rtt = "loopback"
		} else {
			rtt = "RTT +" + rtt
		}
		at := b.Name
		if b.SizeKey != "" {
			at = fmt.Sprintf("%s, %s = %s", b.Name, b.SizeKey, report.FormatValue(size, "", true))
		}
		fmt.Fprintf(&out, "| [%s](%s) | %s | %s: %s | %s: %s | %s | %s | %s, %s |\n",
			h.lesson, h.link, at,
			works, strings.Join(worksValues, "; "), scales, strings.Join(scalesValues, "; "),
			strings.Join(ratios, "; "), growth, strings.Join(units, "; "), rtt)
	}
	return out.Bytes(), nil
}

// headlineRatio says how works compares with scales in unit: their ratio
// where their ranges do not overlap (report.Differs), "to zero" where scales
// has none of what works has (wrong rows, lost payments), report.NoDifference
// otherwise. A unit of which more is better reads "4.4× more", scales over
// works; a latency of a version whose requests failed or timed out has no
// ratio (report.Capped): it would divide by the timeout.
func headlineRatio(b *report.Benchmark, works, scales string, size float64, unit string, worksValue, scalesValue float64) string {
	switch {
	case report.IsLatency(unit) && (b.Failed(works, size) || b.Failed(scales, size)):
		return report.Capped
	case !b.Differs(works, scales, size, unit):
		return report.NoDifference
	case higherIsBetter(unit) && worksValue == 0:
		return "from zero"
	case higherIsBetter(unit) && atLeast(b, works, size, unit) != "":
		if atLeast(b, scales, size, unit) == "" && worksValue >= scalesValue {
			// works is ahead by at least its lower bound: scales has at
			// most this much of it.
			return "≤ " + formatRatioCeil(scalesValue/worksValue) + "× more"
		}
		return report.NoDifference // both may be more than measured
	case higherIsBetter(unit) && atLeast(b, scales, size, unit) != "":
		return "≥ " + formatRatioFloor(scalesValue/worksValue) + "× more"
	case higherIsBetter(unit):
		return report.FormatValue(scalesValue/worksValue, "", true) + "× more"
	case scalesValue == 0:
		return "to zero"
	case worksValue == 0:
		return "from zero"
	}
	return report.FormatValue(worksValue/scalesValue, "", true) + "×"
}

// atLeast returns "≥ " when impl's capacity in unit is a lower bound, its
// ramp or ladder having ended before its knee in some run (knee-found 0), as
// report.Capacity does for capacity-rps; else "".
func atLeast(b *report.Benchmark, impl string, size float64, unit string) string {
	if !strings.HasPrefix(unit, "capacity") {
		return ""
	}
	for _, knee := range b.Samples(impl, size, "knee-found") {
		if knee == 0 {
			return "≥ "
		}
	}
	return ""
}
