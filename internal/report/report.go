// Package report turns `go test -bench` output into what a lesson shows: per
// benchmark, a table of size × implementation, each median with its range over
// the runs (Spread), with the ratio to the first implementation only where the
// ranges do not overlap and benchstat's test agrees (Differs), the
// growth exponent over the top decade of sizes (Exponent), and a log-log
// chart of time against size; and two runs side by side (WriteComparison).
//
// It understands the names the lessons use, BenchmarkX/impl=NAME/SIZE=N: the
// impl key is required; the size key, any other key with a number, may be
// absent (a table of one row, no chart). A size key ending in % is a rate,
// shown in tables but not fitted or charted. Results it cannot place are listed,
// never dropped silently.
package report

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// Report is one benchmark run: where it ran, and its benchmarks.
type Report struct {
	// Config is the run's configuration lines (cpu, go, postgres, rtt-...),
	// in the order they came.
	Config []KeyValue
	// Benchmarks are in the order their first result came.
	Benchmarks []*Benchmark
	// Unplaced says, line by line, what could not be read or placed.
	Unplaced []string
}

// KeyValue is a configuration line.
type KeyValue struct{ Key, Value string }

// Benchmark is the results of one benchmark function, by implementation and size.
type Benchmark struct {
	Name    string    // e.g. "GetUserOrders"
	SizeKey string    // e.g. "orders"; "" when the benchmark has no size
	Impls   []string  // in the order they came; the first is the baseline
	Sizes   []float64 // ascending
	Units   []string  // in the order they came, e.g. "sec/op", "queries/op"

	samples map[sample][]float64
}

type sample struct {
	impl string
	size float64
	unit string
}

// ErrNoResults says that a file has no benchmark result this package can
// place: not the output of go test -bench, or of a run that failed.
var ErrNoResults = errors.New("no benchmark results (BenchmarkX/impl=NAME/… lines); is it the output of go test -bench?")

// isStatus reports whether a configuration key is a tool's status line, such
// as "pgtest: 3 database(s) left by interrupted runs", rather than a fact
// about the run: read and dropped.
func isStatus(key string) bool {
	return key == "pgtest" || strings.HasPrefix(key, "pgtest-status")
}

// Parse reads benchmark output, as go test prints it or benchstat reads it.
// A file with no result it can place is an error wrapping ErrNoResults; the
// status lines of the harness (pgtest: …) are not configuration.
func Parse(r io.Reader, fileName string) (*Report, error) {
	report := &Report{}
	byName := make(map[string]*Benchmark)
	seenConfig := make(map[string]bool)
	reader := benchfmt.NewReader(r, fileName)
	for reader.Scan() {
		switch rec := reader.Result().(type) {
		case *benchfmt.SyntaxError:
			report.Unplaced = append(report.Unplaced, rec.Error())
		case *benchfmt.Result:
			for _, c := range rec.Config {
				if c.File && !seenConfig[c.Key] && !isStatus(c.Key) {
					seenConfig[c.Key] = true
					report.Config = append(report.Config, KeyValue{c.Key, string(c.Value)})
				}
			}
			if err := place(report, byName, rec); err != nil {
				file, line := rec.Pos()
				report.Unplaced = append(report.Unplaced, fmt.Sprintf("%s:%d: %s: %v", file, line, rec.Name.Full(), err))
			}
		}
	}
	if err := reader.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", fileName, err)
	}
	if len(report.Benchmarks) == 0 {
		return nil, fmt.Errorf("%s: %w", fileName, ErrNoResults)
	}
	for _, b := range report.Benchmarks {
		slices.Sort(b.Sizes)
	}
	return report, nil
}

// place files one result under its benchmark, implementation and size.
func place(report *Report, byName map[string]*Benchmark, rec *benchfmt.Result) error {
	base, parts := rec.Name.Parts()
	var impl, sizeKey string
	var size float64
	for _, part := range parts {
		key, value, ok := strings.Cut(strings.TrimPrefix(string(part), "/"), "=")
		switch {
		case strings.HasPrefix(string(part), "-"):
			// -GOMAXPROCS
		case !ok:
			return fmt.Errorf("name part %q is not key=value", part)
		case key == "impl":
			impl = value
		case sizeKey != "":
			return fmt.Errorf("two sizes, %s and %s", sizeKey, key)
		default:
			n, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return fmt.Errorf("%s=%s is not a number", key, value)
			}
			sizeKey, size = key, n
		}
	}
	if impl == "" {
		return errors.New("no impl=… in the name")
	}
	name := strings.TrimPrefix(string(base), "Benchmark")
	b := byName[name]
	if b == nil {
		b = &Benchmark{Name: name, SizeKey: sizeKey, samples: make(map[sample][]float64)}
		byName[name] = b
		report.Benchmarks = append(report.Benchmarks, b)
	}
	if b.SizeKey != sizeKey {
		return fmt.Errorf("size %q where earlier results of %s had %q", sizeKey, name, b.SizeKey)
	}
	if !slices.Contains(b.Impls, impl) {
		b.Impls = append(b.Impls, impl)
	}
	if !slices.Contains(b.Sizes, size) {
		b.Sizes = append(b.Sizes, size)
	}
	for _, v := range rec.Values {
		if !slices.Contains(b.Units, v.Unit) {
			b.Units = append(b.Units, v.Unit)
		}
		key := sample{impl, size, v.Unit}
		b.samples[key] = append(b.samples[key], v.Value)
	}
	return nil
}

// Median returns the median of the samples of impl at size in unit.
func (b *Benchmark) Median(impl string, size float64, unit string) (float64, bool) {
	values := slices.Clone(b.samples[sample{impl, size, unit}])
	if len(values) == 0 {
		return 0, false
	}
	sort.Float64s(values)
	mid := len(values) / 2
	if len(values)%2 == 1 {
		return values[mid], true
	}
	return (values[mid-1] + values[mid]) / 2, true
}

// Runs returns how many samples impl has at size in unit.
func (b *Benchmark) Runs(impl string, size float64, unit string) int {
	return len(b.samples[sample{impl, size, unit}])
}

// Grows reports whether the benchmark runs at two sizes or more of something
// that grows, so that a growth exponent and a chart mean something. A size
// key ending in % is a rate (failures%=10), not a size, and a size of 0 (no
// added lag) has no place on a log scale: tables only.
func (b *Benchmark) Grows() bool {
	return b.SizeKey != "" && !strings.HasSuffix(b.SizeKey, "%") && len(b.Sizes) >= 2 && b.Sizes[0] > 0
}

// Exponent returns how the median of unit grows with the size for impl: the
// local slope of log(median) against log(size) over the top decade (see
// TopDecade), k in median ≈ c·size^k there: about 0 for a cost that does not
// grow, 1 for linear, 2 for quadratic.
//
// It is the top decade's slope rather than one power law fitted over every
// size because a fixed cost (a round trip, a plan) dominates the small sizes
// and pulls such a fit down: a + b·n shows as n^0.6 over 10 … 10,000 while
// its largest sizes grow as n^1.
func (b *Benchmark) Exponent(impl, unit string) (float64, bool) {
	lo, hi, ok := b.TopDecade()
	if !ok {
		return 0, false
	}
	vLo, ok1 := b.Median(impl, lo, unit)
	vHi, ok2 := b.Median(impl, hi, unit)
	if !ok1 || !ok2 || vLo <= 0 || vHi <= 0 {
		return 0, false
	}
	return math.Log(vHi/vLo) / math.Log(hi/lo), true
}

// TopDecade returns the sizes Exponent measures between: the largest size,
// and the largest size at most a tenth of it (the smallest size when none is
// that far below). It needs two sizes or more, above zero.
func (b *Benchmark) TopDecade() (lo, hi float64, ok bool) {
	if !b.Grows() {
		return 0, 0, false
	}
	hi = b.Sizes[len(b.Sizes)-1]
	for _, size := range b.Sizes {
		if size > 0 && (lo == 0 || size <= hi/10) {
			lo = size
		}
	}
	if lo <= 0 || lo >= hi {
		return 0, 0, false
	}
	return lo, hi, true
}

// Alpha is the significance level of Differs, as benchstat's.
const Alpha = 0.05

// Spread returns the smallest and the largest of impl's samples at size in
// unit: the range every median the lessons print carries.
func (b *Benchmark) Spread(impl string, size float64, unit string) (lo, hi float64, ok bool) {
	values := b.samples[sample{impl, size, unit}]
	if len(values) == 0 {
		return 0, 0, false
	}
	return slices.Min(values), slices.Max(values), true
}

// Differs reports whether impl's samples at size in unit differ from base's
// by more than noise, the condition for printing their ratio: their ranges
// (Spread) do not overlap, and a Mann-Whitney U test, as benchstat makes,
// finds p below Alpha. Counts that do not vary (queries, rows: any unit but a
// time) are exact: they differ when their values do. Too few runs of a time
// never differ: six a side are enough, two against six are not.
//
// The ranges are the stricter test on the six runs a side the lessons take
// (ranges apart means p ≈ 0.002), and the one a reader can check in the
// tables; the U test guards against ranges apart by luck of a run or two.
func (b *Benchmark) Differs(base, impl string, size float64, unit string) bool {
	return differ(b.samples[sample{base, size, unit}], b.samples[sample{impl, size, unit}], unit)
}

// differ is Differs on two sets of samples of a unit.
func differ(s1, s2 []float64, unit string) bool {
	if len(s1) == 0 || len(s2) == 0 {
		return false
	}
	if !strings.HasPrefix(unit, "sec/") && constant(s1) && constant(s2) {
		return s1[0] != s2[0]
	}
	if Overlap(s1, s2) {
		return false
	}
	thresholds := benchmath.DefaultThresholds
	thresholds.CompareAlpha = Alpha
	c := benchmath.AssumeNothing.Compare(benchmath.NewSample(slices.Clone(s1), &thresholds), benchmath.NewSample(slices.Clone(s2), &thresholds))
	return c.P < Alpha
}

// failureUnits are the units in which a benchmark reports the share of its
// requests that failed: a timeout, a refusal, an error, one given up on (a
// rung's abandoned payments), or those during a migration.
var failureUnits = []string{"errors-%", "timeouts-%", "abandoned-%", "during-errors-%"}

// Failed reports whether some of impl's requests at size failed in a run
// (a median of any of failureUnits above zero). Its times and latencies
// then are capped by a timeout, or are those of quick refusals: a ratio of
// them to another version's measures the deadline, not the code.
func (b *Benchmark) Failed(impl string, size float64) bool {
	for _, unit := range failureUnits {
		if v, ok := b.Median(impl, size, unit); ok && v > 0 {
			return true
		}
	}
	return false
}

// IsLatency reports whether a unit is a time or a latency (sec/op, p99-ms):
// what Failed makes incomparable.
func IsLatency(unit string) bool {
	return strings.HasPrefix(unit, "sec/") || strings.HasSuffix(unit, "-ms")
}

// Overlap reports whether the ranges of two sets of samples, smallest to
// largest, share a value; two empty sets do not overlap.
func Overlap(s1, s2 []float64) bool {
	if len(s1) == 0 || len(s2) == 0 {
		return false
	}
	return slices.Min(s1) <= slices.Max(s2) && slices.Min(s2) <= slices.Max(s1)
}

// Samples returns impl's samples at size in unit, in the order they came.
func (b *Benchmark) Samples(impl string, size float64, unit string) []float64 {
	return slices.Clone(b.samples[sample{impl, size, unit}])
}

func constant(values []float64) bool {
	for _, v := range values {
		if v != values[0] {
			return false
		}
	}
	return true
}

// Find returns the benchmark of that name, or nil.
func (r *Report) Find(name string) *Benchmark {
	for _, b := range r.Benchmarks {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// ConfigValue returns the value of a configuration key, or "".
func (r *Report) ConfigValue(key string) string {
	for _, kv := range r.Config {
		if kv.Key == key {
			return strings.TrimSpace(kv.Value) // go test pads some CPUs' names
		}
	}
	return ""
}
