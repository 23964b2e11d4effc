package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteComparison writes two runs of the same benchmarks side by side, as
// markdown: where each was measured, then per benchmark a row per size and
// implementation with each unit's median in A and in B, how B's time
// compares with A's (a ratio only where Differs would find a difference), and
// each run's growth over its top decade. A and B are usually the committed
// results and a trainee's own run of the same command.
//
// Rows and units found in one run only are shown with the other side empty.
func WriteComparison(w io.Writer, a, b *Report, nameA, nameB string) error {
	var out strings.Builder
	fmt.Fprintf(&out, "A: `%s`, measured on %s.\n\n", nameA, a.Where())
	fmt.Fprintf(&out, "B: `%s`, measured on %s.\n\n", nameB, b.Where())
	out.WriteString("Medians of each file's runs, with their range (smallest–largest run); \"B vs A\" gives a ratio only where the ranges do not overlap and benchstat's test agrees (p < 0.05). " +
		"Times move with the machine; counts (queries, rows, round trips) should not.\n")
	var names []string
	for _, r := range []*Report{a, b} {
		for _, bench := range r.Benchmarks {
			if !slices.Contains(names, bench.Name) {
				names = append(names, bench.Name)
			}
		}
	}
	for _, name := range names {
		out.WriteString("\n")
		writeComparedTable(&out, name, a.Find(name), b.Find(name))
	}
	for _, side := range []struct {
		name string
		r    *Report
	}{{nameA, a}, {nameB, b}} {
		if len(side.r.Unplaced) > 0 {
			fmt.Fprintf(&out, "\nNot placed in any table, from `%s`:\n\n", side.name)
			for _, line := range side.r.Unplaced {
				fmt.Fprintf(&out, "- %s\n", line)
			}
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// writeComparedTable writes one benchmark of two runs; either may be nil.
func writeComparedTable(out *strings.Builder, name string, a, b *Benchmark) {
	fmt.Fprintf(out, "**%s**\n\n", name)
	if a == nil || b == nil {
		missing := "A"
		if b == nil {
			missing = "B"
		}
		fmt.Fprintf(out, "Only in one run: %s has no %s.\n\n", missing, name)
	}
	var sizeKey string
	var impls, units []string
	var sizes []float64
	for _, bench := range []*Benchmark{a, b} {
		if bench == nil {
			continue
		}
		if sizeKey == "" {
			sizeKey = bench.SizeKey
		}
		for _, impl := range bench.Impls {
			if !slices.Contains(impls, impl) {
				impls = append(impls, impl)
			}
		}
		for _, unit := range bench.orderedUnits() {
			if !slices.Contains(units, unit) {
				units = append(units, unit)
			}
		}
		for _, size := range bench.Sizes {
			if !slices.Contains(sizes, size) {
				sizes = append(sizes, size)
			}
		}
	}
	slices.Sort(sizes)

	header := []string{}
	if sizeKey != "" {
		header = append(header, sizeKey)
	}
	header = append(header, "impl")
	for _, unit := range units {
		header = append(header, unitHeader(unit)+" A", unitHeader(unit)+" B")
		if unit == timeUnit {
			header = append(header, "B vs A")
		}
	}
	fmt.Fprintf(out, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, size := range sizes {
		for _, impl := range impls {
			row := []string{}
			if sizeKey != "" {
				row = append(row, formatCount(size))
			}
			row = append(row, impl)
			for _, unit := range units {
				va, _ := a.median(impl, size, unit)
				vb, _ := b.median(impl, size, unit)
				row = append(row, a.formatMedian(impl, size, unit), b.formatMedian(impl, size, unit))
				if unit == timeUnit {
					row = append(row, versus(a.values(impl, size, unit), b.values(impl, size, unit), va, vb, unit))
				}
			}
			fmt.Fprintf(out, "| %s |\n", strings.Join(row, " | "))
		}
	}
	for _, side := range []struct {
		label string
		bench *Benchmark
	}{{"A", a}, {"B", b}} {
		if side.bench == nil {
			continue
		}
		if growth := side.bench.growth(); growth != "" {
			fmt.Fprintf(out, "\n%s: %s\n", side.label, growth)
		}
	}
}

// versus says how the second sample's time compares with the first's.
func versus(s1, s2 []float64, v1, v2 float64, unit string) string {
	if len(s1) == 0 || len(s2) == 0 || v1 == 0 || v2 == 0 {
		return ""
	}
	if !differ(s1, s2, unit) {
		return NoDifference
	}
	if v2 <= v1 {
		return fmt.Sprintf("%s× faster", FormatRatio(v1/v2))
	}
	return fmt.Sprintf("%s× slower", FormatRatio(v2/v1))
}

// median is Median on a benchmark that may be nil.
func (b *Benchmark) median(impl string, size float64, unit string) (float64, bool) {
	if b == nil {
		return 0, false
	}
	return b.Median(impl, size, unit)
}

// formatMedian is FormatMedian on a benchmark that may be nil.
func (b *Benchmark) formatMedian(impl string, size float64, unit string) string {
	if b == nil {
		return ""
	}
	return b.FormatMedian(impl, size, unit)
}

// values returns the samples of impl at size in unit, from a benchmark that
// may be nil.
func (b *Benchmark) values(impl string, size float64, unit string) []float64 {
	if b == nil {
		return nil
	}
	return b.samples[sample{impl, size, unit}]
}
