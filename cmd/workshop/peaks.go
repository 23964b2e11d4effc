package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"works-vs-scales/internal/workshopenv"
)

// peaksFile is where peaks -w writes each lesson's measured peak of
// connections, and what doctor reads (embedded, as peakConnections).
const peaksFile = "cmd/workshop/peak-connections.txt"

//go:embed peak-connections.txt
var peakConnections string

// A lessonPeak is one line of peaksFile: the most connections one trainee's
// run of lesson n held on the server at once, with no budget set.
type lessonPeak struct {
	n, peak int
}

// parsePeaks reads peaksFile's lines, "lesson peak date machine", after its
// # comments.
func parsePeaks(text string) ([]lessonPeak, error) {
	var peaks []lessonPeak
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("%s: line %q: want lesson, peak, date and machine", peaksFile, line)
		}
		n, err1 := strconv.Atoi(f[0])
		peak, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || peak < 0 {
			return nil, fmt.Errorf("%s: line %q: want a lesson's number and its peak of connections", peaksFile, line)
		}
		peaks = append(peaks, lessonPeak{n: n, peak: peak})
	}
	if len(peaks) == 0 {
		return nil, fmt.Errorf("%s: no lesson measured (go run ./cmd/workshop peaks -w)", peaksFile)
	}
	return peaks, nil
}

// heaviest returns the lesson with the most connections of peaks: the first
// such, by its line.
func heaviest(peaks []lessonPeak) lessonPeak {
	top := peaks[0]
	for _, p := range peaks[1:] {
		if p.peak > top.peak {
			top = p
		}
	}
	return top
}

// peaks measures, lesson by lesson, the most connections one trainee's run
// holds on the server at once with no budget (WORKSHOP_MAX_CONNS unset): its
// benchmarks, once each at their full default ladders (-benchtime 1x), or,
// for a lesson with none (17), its tests (-short), in a go test of their own
// under a database prefix of their own, while pg_stat_activity is read every
// 2 ms. With -w it writes peaksFile, which doctor embeds.
func (w *workshop) peaks(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("peaks", flag.ContinueOnError)
	flags.SetOutput(w.out)
	write := flags.Bool("w", false, "write "+peaksFile)
	only := flags.String("lessons", "", "comma-separated lesson numbers (default: every lesson)")
	where := flags.String("where", "", "the server measured on, for the file's header (default: its version and address)")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("peaks: %w", errUsage)
	}
	url, ok := lookupDatabase()
	if !ok {
		return fmt.Errorf("peaks: %s is not set: it measures on the server a room would use", workshopenv.DatabaseURL)
	}
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("peaks: connect to %s: %w", workshopenv.Redacted(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if *where == "" {
		var version string
		if err := conn.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version); err != nil {
			return fmt.Errorf("peaks: the server's version: %w", err)
		}
		*where = fmt.Sprintf("PostgreSQL %s at %s", version, workshopenv.Redacted(url))
	}
	date, machine := w.now().UTC().Format(time.DateOnly), fmt.Sprintf("%s/%s,%dcpu", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	var lines []string
	for _, e := range exercises {
		if *only != "" && !slicesContainsTrimmed(strings.Split(*only, ","), strconv.Itoa(e.n)) {
			continue
		}
		peak, what, err := w.peakOf(ctx, conn, e)
		if err != nil {
			return err
		}
		fmt.Fprintf(w.out, "lesson %2d: %3d connections at most (%s)\n", e.n, peak, what)
		lines = append(lines, fmt.Sprintf("%-6d %-4d %s %s", e.n, peak, date, machine))
	}
	if !*write {
		return nil
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# The most connections one trainee's run of each lesson held on the server at once, with no\n"+
		"# budget (WORKSHOP_MAX_CONNS unset), the harness's own included, as pg_stat_activity read every\n"+
		"# 2 ms saw them: its benchmarks once each at their default ladders (-benchtime 1x), or for a lesson\n"+
		"# without benchmarks (17) its tests (-short). Measured on the workshop's helpers' server (%s)\n"+
		"# by go run ./cmd/workshop peaks -w; doctor names the heaviest lesson from this file.\n"+
		"# lesson peak date machine\n", *where)
	for _, l := range lines {
		out.WriteString(l + "\n")
	}
	return os.WriteFile(filepath.Join(w.root, peaksFile), out.Bytes(), 0o644)
}

// peakOf runs lesson e's benchmarks (or tests) and samples its connections.
func (w *workshop) peakOf(ctx context.Context, conn *pgx.Conn, e exercise) (int, string, error) {
	prefix := fmt.Sprintf("%spk%02d_", workshopenv.Prefix(), e.n)
	args := []string{"test", "-count=1", "-run", "^$", "-bench", ".", "-benchtime", "1x", "./" + e.bench()}
	what := "benchmarks"
	if !w.hasBenchmarks(e) {
		args = []string{"test", "-count=1", "-short", "-run", ".", "./" + e.bench()}
		what = "tests, -short"
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = w.root
	cmd.Env = append(os.Environ(), workshopenv.MaxConns+"=", workshopenv.DBPrefix+"="+prefix)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, "", fmt.Errorf("peaks: lesson %d: %w", e.n, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	const sample = `SELECT count(*) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND (left(datname, length($1)) = $1 OR left(application_name, length($1)) = $1)`
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	peak := 0
	for {
		select {
		case <-tick.C:
		case err := <-done:
			if err != nil {
				return peak, what, fmt.Errorf("peaks: lesson %d: go %s: %w\n%s", e.n, strings.Join(args, " "), err, out.String())
			}
			return peak, what, nil
		}
		var n int
		if err := conn.QueryRow(ctx, sample, prefix).Scan(&n); err != nil {
			cmd.Process.Kill()
			<-done
			return peak, what, fmt.Errorf("peaks: sample pg_stat_activity: %w", err)
		}
		peak = max(peak, n)
	}
}

// hasBenchmarks reports whether lesson e's test package has a benchmark.
func (w *workshop) hasBenchmarks(e exercise) bool {
	files, _ := filepath.Glob(filepath.Join(w.root, e.bench(), "*_test.go"))
	for _, f := range files {
		if text, err := os.ReadFile(f); err == nil && bytes.Contains(text, []byte("\nfunc Benchmark")) {
			return true
		}
	}
	return false
}
