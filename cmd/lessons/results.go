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
	{"4. Streaming", "lessons/04-streaming.md", "04-export", "ExportOrders", "live-heap-bytes", "naive", "stream", false},
	{"5. Nested loops", "lessons/05-nested-loops.md", "05-nested-loops", "FindDuplicates", "sec/op", "", "", false},
	{"6. Caching", "lessons/06-caching.md", "06-caching-rtt1ms", "GetProduct", "queries/op", "naive", "inprocess", false},
	{"7. Stampede", "lessons/07-stampede.md", "07-stampede", "BestSellers", "queries/op", "", "", false},
	{"8. Validation", "lessons/08-validation.md", "08-validation", "ProcessPayment", "wrong-rows+sec/op", "", "", false},
	{"9. Retries", "lessons/09-retries.md", "09-retries", "Pay", "charged-unrecorded-%", "naive", "scalable", false},
	{"10. Circuit breaker", "lessons/10-circuit-breaker.md", "10-circuit-breaker", "PayDuringOutage", "gateway-requests/op", "naive", "breaker", false},
	{"11. Bulkheads", "lessons/11-bulkheads.md", "11-bulkheads", "OrdersWhileSearchIsStuck", "p50-ms", "", "", true},
	{"12. Races", "lessons/12-races.md", "12-races", "BuyHot", "oversold-units/op", "naive", "update", true},
	{"13. Connections", "lessons/13-connections.md", "13-connections", "FastQueryDuringSlowPayments", "sec/op", "naive", "scalable", false},
	{"14. Writes", "lessons/14-writes.md", "14-writes", "ImportOrders", "sec/op", "naive", "copy", false},
	{"15. Observability", "lessons/15-observability.md", "15-observability", "ObserveMetrics", "series", "naive", "scalable", false},
	{"16. Overload", "lessons/16-overload.md", "16-overload", "Overload", "p99-ms+goodput-rps", "naive", "scalable", true},
	{"17. Capstone", "lessons/17-capstone.md", "17-capstone-rtt1ms", "Shopd", "p99-ms", "naive", "scalable", true},
	{"18. Replicas", "lessons/18-replicas.md", "18-replicas", "ReadYourWrites", "stale-reads-%", "naive", "scalable", true},
	{"19. Partitioning", "lessons/19-partitioning.md", "19-partitioning", "Retention", "wal-bytes/op", "naive", "scalable", true},
}

// headlineTable writes a line per lesson: at the largest size, the first
// implementation against the last, their ratio where benchstat's test finds
// a difference (report.NoDifference otherwise), and how each grows over the
// top decade of sizes.
func headlineTable(reports map[string]*report.Report) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString("| lesson | at the largest size | works | scales | ratio | grows as (top decade) | of, with |\n|---|---|---|---|---|---|---|\n")
	for _, h := range headlines {
		r := reports[h.results]
		if r == nil {
			return nil, fmt.Errorf("headline of %s: no %s/%s.bench", h.lesson, resultsDir, h.results)
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
			worksValues = append(worksValues, report.FormatValue(worksValue, unit, true))
			scalesValues = append(scalesValues, report.FormatValue(scalesValue, unit, true))
			ratios = append(ratios, headlineRatio(b, works, scales, size, unit, worksValue, scalesValue))
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
// where benchstat's test finds a difference, "to zero" where scales has none
// of what works has (wrong rows, lost payments), report.NoDifference
// otherwise.
func headlineRatio(b *report.Benchmark, works, scales string, size float64, unit string, worksValue, scalesValue float64) string {
	switch {
	case !b.Differs(works, scales, size, unit):
		return report.NoDifference
	case scalesValue == 0:
		return "to zero"
	}
	return report.FormatValue(worksValue/scalesValue, "", true) + "×"
}
