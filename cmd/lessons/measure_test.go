package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMeasureScriptMeasuresEveryBenchmarkItNames: each interleave line of
// lessons/results/measure.sh that writes a file runs, in the package it
// names, the top-level benchmarks its pattern matches, one version a
// process by the benchmark's first level below its name (impl=…); the
// file it wrote must hold a result of each of them. A benchmark whose first
// level is not the version (lesson 18's ReadYourWrites once named its lag
// first) matches none of the patterns, is never run, and this fails.
func TestMeasureScriptMeasuresEveryBenchmarkItNames(t *testing.T) {
	root := "../.."
	script, err := os.Open(filepath.Join(root, resultsDir, "measure.sh"))
	if err != nil {
		t.Fatal(err)
	}
	defer script.Close()
	line := regexp.MustCompile(`\binterleave \d+ (\./bench/\S+) '([^']+)' '[^']+'.*> \$results/(\S+\.bench)`)
	declared := regexp.MustCompile(`(?m)^func (Benchmark\w+)\(b \*testing\.B\)`)
	checked := 0
	scanner := bufio.NewScanner(script)
	for scanner.Scan() {
		m := line.FindStringSubmatch(scanner.Text())
		if m == nil {
			continue
		}
		pkg, pattern, out := m[1], m[2], m[3]
		match, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("measure.sh: %s: %v", pattern, err)
		}
		results, err := os.ReadFile(filepath.Join(root, resultsDir, out))
		if err != nil {
			t.Errorf("measure.sh writes %s: %v", out, err)
			continue
		}
		sources, err := filepath.Glob(filepath.Join(root, pkg, "*_test.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, source := range sources {
			text, err := os.ReadFile(source)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range declared.FindAllStringSubmatch(string(text), -1) {
				name := d[1]
				if !match.MatchString(name) {
					continue
				}
				checked++
				if !strings.Contains(string(results), "\n"+name+"/impl=") {
					t.Errorf("measure.sh runs %s (%s) into %s, which has no %s/impl=… result: is the version its first level?", pattern, pkg, out, name)
				}
			}
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no interleave line of measure.sh was checked")
	}
}
