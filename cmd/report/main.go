// Report turns `go test -bench` output into tables and charts: for each
// benchmark, median time per operation (and every other metric) by size and
// implementation with its range over the runs, the ratio to the first
// implementation where the ranges do not overlap, the growth exponent over
// the top decade of sizes, and a log-log chart of time against size.
//
// Benchmark names are read as the lessons write them,
// BenchmarkX/impl=NAME/SIZE=N; results it cannot place are listed.
//
// Usage:
//
//	go run ./cmd/report [-charts DIR] FILE...
//	go run ./cmd/report -compare COMMITTED MINE
//
// The tables go to standard output, as markdown; with -charts, a chart per
// benchmark goes to DIR/FILE-BENCHMARK.svg. With -compare, the two runs are
// shown side by side, each with the machine it was measured on: per size and
// implementation each metric in A (the first file) and B (the second), how B's
// time compares with A's where their ranges do not overlap, and each
// run's growth. For example, a lesson's committed results against your own:
//
//	go run ./cmd/report -compare lessons/results/01-n-plus-one.bench mine/01-n-plus-one.bench
//
// A file with no benchmark result in it (not go test -bench output, or a run
// that failed) is an error: the command says so and exits 1. The lessons' own
// tables and charts are made by go run ./cmd/lessons.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"works-vs-scales/internal/report"
)

func main() {
	charts := flag.String("charts", "", "write a log-log chart per benchmark into this directory")
	compare := flag.Bool("compare", false, "show two files side by side: -compare COMMITTED MINE")
	flag.Parse()
	if *compare {
		if flag.NArg() != 2 || *charts != "" {
			fmt.Fprintln(os.Stderr, "usage: go run ./cmd/report -compare COMMITTED MINE   (two go test -bench outputs)")
			os.Exit(2)
		}
		if err := compareFiles(os.Stdout, flag.Arg(0), flag.Arg(1)); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
		return
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./cmd/report [-charts DIR] FILE...   (go test -bench output)")
		fmt.Fprintln(os.Stderr, "       go run ./cmd/report -compare COMMITTED MINE")
		os.Exit(2)
	}
	for _, path := range flag.Args() {
		if err := reportFile(path, *charts); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
}

// compareFiles writes the two runs side by side.
func compareFiles(w io.Writer, pathA, pathB string) error {
	a, err := parseFile(pathA)
	if err != nil {
		return err
	}
	b, err := parseFile(pathB)
	if err != nil {
		return err
	}
	return report.WriteComparison(w, a, b, pathA, pathB)
}

func parseFile(path string) (*report.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return report.Parse(f, path)
}

func reportFile(path, chartsDir string) error {
	r, err := parseFile(path)
	if err != nil {
		return err
	}
	if err := r.WriteMarkdown(os.Stdout, path); err != nil {
		return err
	}
	fmt.Println()
	if chartsDir == "" {
		return nil
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	for _, b := range r.Benchmarks {
		if !b.Grows() {
			continue
		}
		svg, err := b.ChartSVG(r.Machine())
		if err != nil {
			return err
		}
		out := filepath.Join(chartsDir, base+"-"+b.Name+".svg")
		if err := os.WriteFile(out, svg, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", out)
	}
	return nil
}
