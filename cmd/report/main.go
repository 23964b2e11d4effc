// Report turns `go test -bench` output into tables and charts: for each
// benchmark, median time per operation (and every other metric) by size and
// implementation, the ratio to the first implementation, the growth exponent
// fitted over the sizes, and a log-log chart of time against size.
//
// Benchmark names are read as the lessons write them,
// BenchmarkX/impl=NAME/SIZE=N; results it cannot place are listed.
//
// Usage:
//
//	go run ./cmd/report [-charts DIR] FILE...
//
// The tables go to standard output, as markdown; with -charts, a chart per
// benchmark goes to DIR/FILE-BENCHMARK.svg. The lessons' own tables and charts
// are made by go run ./cmd/lessons.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"works-vs-scales/internal/report"
)

func main() {
	charts := flag.String("charts", "", "write a log-log chart per benchmark into this directory")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./cmd/report [-charts DIR] FILE...   (go test -bench output)")
		os.Exit(2)
	}
	for _, path := range flag.Args() {
		if err := reportFile(path, *charts); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
}

func reportFile(path, chartsDir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := report.Parse(f, path)
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
