package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"works-vs-scales/internal/report"
)

// figureMarker matches a figure quoted in prose, inline: the marker, the
// figure rendered last time, and its end, on one line.
var figureMarker = regexp.MustCompile(`<!-- figure: ([^>]*?) -->(.*?)<!-- end -->`)

// figure returns one number of a results file, formatted as its tables show
// it. args are the file, then either "config" and a configuration key
// (rtt-measured), or a benchmark, its implementation (impl=NAME), its size
// (KEY=N, where it has sizes), optionally vs=IMPL, and a unit:
//
//	sec/op, queries/op, …    the median in that unit, with its range over
//	                         the runs where they varied: "2.39 s (2.31–2.52 s)"
//	vs=IMPL with a unit      impl's median over IMPL's, "12×", or
//	                         report.NoDifference where their ranges overlap
//	                         (see report.Differs)
//	growth                   the slope of time over the top decade, "n^2.0"
//	size (no impl needed)    the size itself, "7,069"
//
// A size is a number, or its place among the benchmark's sizes, so that a
// lesson survives a generator that changes them: KEY=#1 is the smallest,
// KEY=#2 the next, KEY=largest the largest.
//
// A figure the file does not have is an error, so a lesson cannot quote one.
func figure(root string, args []string, cache map[string]*report.Report) (string, error) {
	if len(args) < 3 {
		return "", fmt.Errorf("want a results file, a benchmark or config, and what of it; got %q", args)
	}
	r, err := parsedResults(root, args[0], cache)
	if err != nil {
		return "", err
	}
	if args[1] == "config" {
		if len(args) != 3 {
			return "", fmt.Errorf("want config and one key, got %q", args[1:])
		}
		value := r.ConfigValue(args[2])
		if value == "" {
			return "", fmt.Errorf("%s has no configuration line %s", args[0], args[2])
		}
		return value, nil
	}
	b := r.Find(args[1])
	if b == nil {
		return "", fmt.Errorf("%s has no benchmark %s", args[0], args[1])
	}
	var impl, vs, unit string
	var size float64
	hasSize := false
	for _, arg := range args[2:] {
		key, value, ok := strings.Cut(arg, "=")
		switch {
		case !ok:
			if unit != "" {
				return "", fmt.Errorf("two units, %s and %s", unit, arg)
			}
			unit = arg
		case key == "impl":
			impl = value
		case key == "vs":
			vs = value
		case key == b.SizeKey:
			if size, err = sizeOf(b, value); err != nil {
				return "", err
			}
			hasSize = true
		default:
			return "", fmt.Errorf("%s has no key %s (its size is %q)", args[1], key, b.SizeKey)
		}
	}
	switch {
	case unit == "size" && hasSize:
		return report.FormatValue(size, "", true), nil
	case impl == "" || unit == "":
		return "", fmt.Errorf("want impl=NAME and a unit, got %q", args[2:])
	case unit == "growth":
		k, ok := b.Exponent(impl, "sec/op")
		if !ok {
			return "", fmt.Errorf("%s has no growth for %s", args[1], impl)
		}
		return "n^" + report.FormatExponent(k, 1), nil
	case b.SizeKey != "" && !hasSize:
		return "", fmt.Errorf("%s needs its size, %s=N", args[1], b.SizeKey)
	}
	value, ok := b.Median(impl, size, unit)
	if !ok {
		return "", fmt.Errorf("%s has no %s for impl=%s at %s=%v", args[1], unit, impl, b.SizeKey, size)
	}
	if vs == "" {
		return b.FormatMedian(impl, size, unit), nil
	}
	other, ok := b.Median(vs, size, unit)
	if !ok || other == 0 {
		return "", fmt.Errorf("%s has no %s for impl=%s at %s=%v", args[1], unit, vs, b.SizeKey, size)
	}
	if !b.Differs(impl, vs, size, unit) {
		return report.NoDifference, nil
	}
	return report.FormatRatio(value/other) + "×", nil
}

// parsedResults reads a results file once per run.
func parsedResults(root, path string, cache map[string]*report.Report) (*report.Report, error) {
	if r, ok := cache[path]; ok {
		return r, nil
	}
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := report.Parse(f, filepath.Base(path))
	if err != nil {
		return nil, err
	}
	cache[path] = r
	return r, nil
}

// sizeOf reads a figure's size: a number, #N (the Nth smallest) or largest.
func sizeOf(b *report.Benchmark, value string) (float64, error) {
	switch {
	case value == "largest" && len(b.Sizes) > 0:
		return b.Sizes[len(b.Sizes)-1], nil
	case strings.HasPrefix(value, "#"):
		n, err := strconv.Atoi(value[1:])
		if err != nil || n < 1 || n > len(b.Sizes) {
			return 0, fmt.Errorf("%s=%s: %s has %d sizes", b.SizeKey, value, b.Name, len(b.Sizes))
		}
		return b.Sizes[n-1], nil
	}
	size, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%s is not a number, #N or largest", b.SizeKey, value)
	}
	return size, nil
}

// handTypedRatio matches a ratio written as a number and ×, e.g. "4.8×" or
// "198 ×": in a lesson's prose, a ratio comes from the results.
var handTypedRatio = regexp.MustCompile(`\d[\d,.]*\s?×`)

// proseOnly blanks what a lesson does not type by hand: generated parts,
// figures, fenced code and inline code.
var proseOnly = []*regexp.Regexp{
	generated,
	figureMarker,
	regexp.MustCompile("(?s)```.*?```"),
	regexp.MustCompile("`[^`\n]*`"),
}

// ratiosTypedByHand returns the ratios a lesson's prose types by hand,
// rather than quoting from the results with a figure marker.
func ratiosTypedByHand(lesson string) []string {
	for _, re := range proseOnly {
		lesson = re.ReplaceAllString(lesson, "")
	}
	return handTypedRatio.FindAllString(lesson, -1)
}
