package report

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// timeUnit is benchfmt's normalized unit of time per operation.
const timeUnit = "sec/op"

// WriteMarkdown writes where the run was measured, then a table per benchmark.
func (r *Report) WriteMarkdown(w io.Writer, source string) error {
	var out strings.Builder
	fmt.Fprintf(&out, "Measured on %s. From `%s`; medians of %s, each with its range (smallest–largest run) where the runs varied; a ratio only where the two ranges do not overlap and benchstat's test agrees (p < %v), else %q.\n", r.Where(), source, r.runsPhrase(), Alpha, NoDifference)
	for _, b := range r.Benchmarks {
		out.WriteString("\n")
		b.writeTable(&out)
	}
	if len(r.Unplaced) > 0 {
		fmt.Fprintf(&out, "\nNot placed in any table:\n\n")
		for _, line := range r.Unplaced {
			fmt.Fprintf(&out, "- %s\n", line)
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// Where says where the run was measured, from its configuration lines.
func (r *Report) Where() string {
	var parts []string
	add := func(format string, keys ...string) {
		values := make([]any, len(keys))
		for i, key := range keys {
			if values[i] = r.ConfigValue(key); values[i] == "" {
				return
			}
		}
		parts = append(parts, fmt.Sprintf(format, values...))
	}
	add("%s", "cpu")
	add("%s CPUs", "gomaxprocs")
	add("%s", "go")
	add("PostgreSQL %s", "postgres")
	add("fsync %s", "postgres-fsync")
	add("shared_buffers %s", "postgres-shared_buffers")
	add("round trip %s (added: %s)", "rtt-measured", "rtt-added")
	add("on %s", "date")
	add("commit %s", "commit")
	if len(parts) == 0 {
		return "an unrecorded machine"
	}
	return strings.Join(parts, ", ")
}

// Machine says in a short line where the run was measured, for a chart's
// subtitle: the CPU's name without its trademarks and clock, and the line
// broken in two where it would be wider than the chart (about 80 characters).
func (r *Report) Machine() string {
	var parts []string
	for _, key := range []string{"cpu", "go", "postgres", "rtt-measured", "date"} {
		value := r.ConfigValue(key)
		if value == "" {
			continue
		}
		switch key {
		case "cpu":
			value = shortCPU(value)
		case "postgres":
			value = "PostgreSQL " + strings.Fields(value)[0]
		case "rtt-measured":
			value = "round trip " + value
		}
		parts = append(parts, value)
	}
	var lines []string
	line := ""
	for _, part := range parts {
		if line != "" && len([]rune(line))+len(" · ")+len([]rune(part)) > machineWidth {
			lines, line = append(lines, line), ""
		}
		if line != "" {
			line += " · "
		}
		line += part
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// machineWidth is about as many characters as a chart's subtitle shows.
const machineWidth = 80

// cpuNoise matches what a CPU's name says that a reader does not need.
var cpuNoise = regexp.MustCompile(`\((R|TM|tm|r)\)|\s+CPU\s*@.*$|\s*@.*$|\s+\d+-Core Processor|\s+with Radeon.*$|\s+Processor\b`)

// shortCPU shortens a CPU's name as the runtime reports it: "Intel(R)
// Core(TM) i7-10510U CPU @ 1.80GHz" is "Intel Core i7-10510U"; and cuts what
// is still longer than half a subtitle.
func shortCPU(name string) string {
	short := strings.Join(strings.Fields(cpuNoise.ReplaceAllString(name, "")), " ")
	if runes := []rune(short); len(runes) > machineWidth/2 {
		short = string(runes[:machineWidth/2-1]) + "…"
	}
	if short == "" {
		return name
	}
	return short
}

func (r *Report) runsPhrase() string {
	var runs []int
	for _, b := range r.Benchmarks {
		for key, values := range b.samples {
			if key.unit == timeUnit && !slices.Contains(runs, len(values)) {
				runs = append(runs, len(values))
			}
		}
	}
	slices.Sort(runs)
	switch len(runs) {
	case 0:
		return "no runs"
	case 1:
		return fmt.Sprintf("%d runs", runs[0])
	}
	return fmt.Sprintf("%d to %d runs", runs[0], runs[len(runs)-1])
}

// writeTable writes the benchmark as a table: a row per size and
// implementation, a column per unit, and the time against the baseline.
func (b *Benchmark) writeTable(out *strings.Builder) {
	baseline := b.Impls[0]
	units := b.orderedUnits()
	fmt.Fprintf(out, "**%s**\n\n", b.Name)
	header := []string{}
	if b.SizeKey != "" {
		header = append(header, b.SizeKey)
	}
	header = append(header, "impl")
	for _, unit := range units {
		header = append(header, unitHeader(unit))
		if unit == timeUnit {
			header = append(header, "vs "+baseline)
		}
	}
	fmt.Fprintf(out, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, size := range b.Sizes {
		for _, impl := range b.Impls {
			row := []string{}
			if b.SizeKey != "" {
				row = append(row, formatCount(size))
			}
			row = append(row, impl)
			for _, unit := range units {
				row = append(row, b.FormatMedian(impl, size, unit))
				if unit == timeUnit {
					row = append(row, b.vsBaseline(baseline, impl, size))
				}
			}
			fmt.Fprintf(out, "| %s |\n", strings.Join(row, " | "))
		}
	}
	if growth := b.growth(); growth != "" {
		fmt.Fprintf(out, "\n%s\n", growth)
	}
}

// orderedUnits puts time first, then the lesson's own metrics, then memory.
func (b *Benchmark) orderedUnits() []string {
	rank := func(unit string) int {
		switch unit {
		case timeUnit:
			return 0
		case "B/op":
			return 2
		case "allocs/op":
			return 3
		}
		return 1
	}
	units := slices.Clone(b.Units)
	slices.SortStableFunc(units, func(a, c string) int { return rank(a) - rank(c) })
	return units
}

// NoDifference is what a table or headline says where a ratio would be noise:
// the two versions' ranges overlap (see Differs).
const NoDifference = "no clear difference"

// Capped is what a table or headline says in place of a ratio of times, or
// of latencies, where a version's requests failed (see Failed).
const Capped = "no ratio: requests failed or timed out"

// FormatMedian writes impl's median at size in unit with its range over the
// runs, "2.39 s (2.31–2.52 s)"; a value that did not vary has no range, and
// no sample is "".
func (b *Benchmark) FormatMedian(impl string, size float64, unit string) string {
	median, ok := b.Median(impl, size, unit)
	if !ok {
		return ""
	}
	lo, hi, _ := b.Spread(impl, size, unit)
	return FormatValue(median, unit, true) + FormatRange(lo, hi, unit)
}

// FormatRange writes a range of samples after its median, " (2.31–2.52 s)",
// the unit once where both ends share it; "" where the ends are written
// alike (the runs did not vary, or not in the digits shown).
func FormatRange(lo, hi float64, unit string) string {
	from, to := FormatValue(lo, unit, true), FormatValue(hi, unit, true)
	if from == to {
		return ""
	}
	fromNum, fromUnit, ok1 := strings.Cut(from, " ")
	toNum, toUnit, ok2 := strings.Cut(to, " ")
	if ok1 && ok2 && fromUnit == toUnit {
		return fmt.Sprintf(" (%s–%s %s)", fromNum, toNum, toUnit)
	}
	return fmt.Sprintf(" (%s–%s)", from, to)
}

// vsBaseline says how impl compares with the baseline's time at size: a
// ratio only where the difference is significant (see Differs).
func (b *Benchmark) vsBaseline(baseline, impl string, size float64) string {
	if impl == baseline {
		return ""
	}
	base, ok1 := b.Median(baseline, size, timeUnit)
	this, ok2 := b.Median(impl, size, timeUnit)
	if !ok1 || !ok2 || base == 0 || this == 0 {
		return ""
	}
	if b.Failed(baseline, size) || b.Failed(impl, size) {
		return Capped
	}
	if !b.Differs(baseline, impl, size, timeUnit) {
		return NoDifference
	}
	if ratio := base / this; ratio >= 1 {
		return fmt.Sprintf("%s× faster", FormatRatio(ratio))
	}
	return fmt.Sprintf("%s× slower", FormatRatio(this/base))
}

// growth says how each implementation's time grows with the size, over the
// top decade.
func (b *Benchmark) growth() string {
	lo, hi, ok := b.TopDecade()
	if !ok {
		return ""
	}
	var fits []string
	for _, impl := range b.Impls {
		if k, ok := b.Exponent(impl, timeUnit); ok {
			fits = append(fits, fmt.Sprintf("%s ≈ n^%s", impl, FormatExponent(k, 2)))
		}
	}
	if len(fits) == 0 {
		return ""
	}
	return fmt.Sprintf("Time per op grows as %s: the slope over the top decade, %s = %s … %s (n^1 is linear; n^0 does not grow).",
		strings.Join(fits, ", "), b.SizeKey, formatCount(lo), formatCount(hi))
}

func unitHeader(unit string) string {
	if per, ok := strings.CutPrefix(unit, "sec/"); ok {
		return "time/" + per
	}
	return unit
}

// FormatValue writes a value in a unit people read: times in ns to s, bytes
// in B to GiB, counts with thousands separators; "" when not ok.
func FormatValue(v float64, unit string, ok bool) string {
	switch {
	case !ok:
		return ""
	case strings.HasPrefix(unit, "sec/"):
		return FormatSeconds(v)
	case strings.HasPrefix(unit, "B/") || strings.HasSuffix(unit, "-bytes"):
		return formatBytes(v)
	}
	if v >= 100 || v == math.Trunc(v) {
		return formatCount(math.Round(v))
	}
	return sig3(v)
}

// FormatSeconds writes a duration in seconds with three significant digits.
func FormatSeconds(s float64) string {
	switch {
	case s >= 1:
		return sig3(s) + " s"
	case s >= 1e-3:
		return sig3(s*1e3) + " ms"
	case s >= 1e-6:
		return sig3(s*1e6) + " µs"
	}
	return sig3(s*1e9) + " ns"
}

func formatBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	i := 0
	for ; b >= 1024 && i < len(units)-1; i++ {
		b /= 1024
	}
	if i == 0 {
		return formatCount(b) + " B"
	}
	return sig3(b) + " " + units[i]
}

// FormatRatio writes a ratio as the tables do: 4.8 below ten, 12 and 1,349
// above.
func FormatRatio(r float64) string {
	if r >= 10 {
		return formatCount(math.Round(r))
	}
	return fmt.Sprintf("%.1f", r)
}

// formatCount writes 1234567 as 1,234,567 and keeps up to two decimals of a
// fraction.
func formatCount(v float64) string {
	if v != math.Trunc(v) {
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
	digits := fmt.Sprintf("%d", int64(math.Abs(v)))
	var out []byte
	for i := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, digits[i])
	}
	if v < 0 {
		return "-" + string(out)
	}
	return string(out)
}

// sig3 writes v with three significant digits, e.g. 1.23, 12.3, 123.
func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// FormatExponent writes a fitted exponent with the given decimals, and a
// rounded zero as 0, not -0.
func FormatExponent(k float64, decimals int) string {
	text := strconv.FormatFloat(k, 'f', decimals, 64)
	if strings.Trim(text, "-0.") == "" {
		return strconv.FormatFloat(0, 'f', decimals, 64)
	}
	return text
}
