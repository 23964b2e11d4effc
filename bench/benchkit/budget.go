package benchkit

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/syncbuf"
	"works-vs-scales/internal/workshopenv"
)

// ConnsReserve is what a benchmark leaves of a room's per-trainee budget
// (WORKSHOP_MAX_CONNS) to the pools the harness gave it: the connections its
// setup used stay open in them while the benchmark's own pools work. A
// benchmark that holds a lock through the pool of its database (lesson 11's
// stuck search) holds one and asks on another; the run's read-only copy of
// the shop keeps one more (lesson 11's run was sampled at 9 on its copy and 1
// on the read-only one). The harness's connections to the maintenance
// database are its own reserve, outside the budget
// (workshopenv.HarnessConns).
const ConnsReserve = 3

// OwnConns returns how many connections a benchmark's own pools may hold
// together under a room's budget: the budget less ConnsReserve. ok is false
// when no budget is set.
func OwnConns(tb testing.TB) (n int32, ok bool) {
	tb.Helper()
	budget, capped, err := workshopenv.ConnBudget()
	if err != nil {
		tb.Fatal(err)
	}
	if !capped {
		return 0, false
	}
	return int32(max(1, budget-ConnsReserve)), true
}

// SkipAboveBudget skips b, saying the budget, when its own pools would hold
// more than conns connections together under a room's budget. It is for the
// points of a sweep over pool sizes (lesson 13's PoolSize): a smaller pool
// measured under a larger pool's name would be a false point of the curve,
// and the budget's own size is another point of the same sweep.
func SkipAboveBudget(b *testing.B, conns int32) {
	b.Helper()
	if own, ok := OwnConns(b); ok && conns > own {
		b.Skipf("%d connections are above this trainee's budget: %s=%s leaves %d to the benchmark's own pools (%d for the harness's pool); the trainer's machine runs it",
			conns, workshopenv.MaxConns, budgetSetting(), own, ConnsReserve)
	}
}

// ClampToBudget returns size, or the connections the budget leaves the
// benchmark's own pools when they are fewer, and the label to append to the
// benchmark's name: empty when size fits, "/budget-pool=N" when clamped. It
// is for a pool whose size a benchmark holds fixed while it varies something
// else (callers, payments in flight): skipping it would leave a room without
// the lesson's measurement, and the label keeps a clamped result from being
// read, or compared by benchstat, as the full-size one. Per-operation counts
// (connects/op, queries/op) do not depend on the pool's size; a figure that
// does (Little's law's cliff) must be computed from the size returned.
func ClampToBudget(tb testing.TB, size int32) (int32, string) {
	tb.Helper()
	if own, ok := OwnConns(tb); ok && size > own {
		return own, fmt.Sprintf("/budget-pool=%d", own)
	}
	return size, ""
}

// budgetSetting returns the budget's setting as the environment has it.
func budgetSetting() string {
	n, _, _ := workshopenv.ConnBudget()
	return fmt.Sprint(n)
}

// Peak is the most connections a run held at once on the server, as
// PeakConnsOfBenchmarks sampled them.
type Peak struct {
	// Databases is on the run's own databases (its prefix's): the harness's
	// pools on them and the benchmarks' own pools, the budget's part.
	Databases int
	// Maintenance is on other databases under the run's application_name:
	// the harness's admin pool and its run's lock, pgtest's reserve.
	Maintenance int
	// Samples is how many times pg_stat_activity was read.
	Samples int
	// At is the sessions of the sample that set Databases' peak: each
	// database with its count, and what the child had printed then.
	At string
}

// PeakConnsOfBenchmarks runs this test binary again as a child, running the
// benchmarks pattern matches once each at their smallest sizes
// (-test.benchtime=1x, -test.short, no tests; -test.v, so that skips say
// why) under a room's budget of budget connections (WORKSHOP_MAX_CONNS) and
// a database prefix of its own (this run's with "c", four hex digits of the
// test binary's name and "_" added, so that no other package's run of the
// trainee's is counted; it keeps its own template of the shop).
// Meanwhile it reads pg_stat_activity every 2 ms on one connection of this
// run: the peak is sampled, and a peak shorter than that can pass unseen
// (opening a connection alone takes longer). It returns the peak and what the child printed.
func PeakConnsOfBenchmarks(t *testing.T, pattern string, budget int) (Peak, string, error) {
	t.Helper()
	binary := fnv.New32a()
	binary.Write([]byte(filepath.Base(os.Args[0]))) // the package's test binary: packages run at once
	prefix := fmt.Sprintf("%sc%04x_", pgtest.Prefix(), binary.Sum32()&0xffff)
	if len(prefix) > 22 {
		t.Fatalf("the child's prefix %s would be longer than the 22 bytes a prefix may have: set a %s of at most 16 bytes", prefix, workshopenv.DBPrefix)
	}
	DropUnderPrefix(t, prefix)
	args := []string{"-test.run=^$", "-test.bench=" + pattern, "-test.benchtime=1x", "-test.short", "-test.count=1", "-test.v"}
	if deadline, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+max(time.Until(deadline)-5*time.Second, time.Second).String())
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), workshopenv.MaxConns+"="+strconv.Itoa(budget), workshopenv.DBPrefix+"="+prefix,
		workshopenv.DatabaseURL+"="+pgtest.ServerURL(t))
	var out syncbuf.Buffer // read while the child writes
	cmd.Stdout, cmd.Stderr = &out, &out

	conn, err := pgx.Connect(t.Context(), pgtest.ServerURL(t))
	if err != nil {
		return Peak{}, "", fmt.Errorf("connect to sample pg_stat_activity: %w", err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	if err := cmd.Start(); err != nil {
		return Peak{}, "", fmt.Errorf("start the benchmarks %s as a child: %w", pattern, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	const sample = `SELECT count(*) FILTER (WHERE left(datname, length($1)) = $1),
		count(*) FILTER (WHERE left(application_name, length($1)) = $1 AND left(datname, length($1)) IS DISTINCT FROM $1)
		FROM pg_stat_activity WHERE pid <> pg_backend_pid()`
	var peak Peak
	tick := time.NewTicker(2 * time.Millisecond) // the server's CPU is others' too; a connection lasts longer
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case err := <-done:
			if err != nil {
				return peak, out.String(), fmt.Errorf("benchmarks %s under %s=%d: %w", pattern, workshopenv.MaxConns, budget, err)
			}
			return peak, out.String(), nil
		}
		var databases, maintenance int
		if err := conn.QueryRow(t.Context(), sample, prefix).Scan(&databases, &maintenance); err != nil {
			cmd.Process.Kill()
			<-done
			return peak, out.String(), fmt.Errorf("sample pg_stat_activity: %w", err)
		}
		if databases > peak.Databases {
			const sessions = `SELECT coalesce(string_agg(datname || ': ' || n, ', '), '') FROM
				(SELECT datname, count(*) AS n FROM pg_stat_activity WHERE left(datname, length($1)) = $1 GROUP BY datname) AS d`
			if err := conn.QueryRow(t.Context(), sessions, prefix).Scan(&peak.At); err != nil {
				peak.At = err.Error()
			}
			peak.At += " (after: " + out.Tail(1) + ")"
		}
		peak.Databases, peak.Maintenance = max(peak.Databases, databases), max(peak.Maintenance, maintenance)
		peak.Samples++
	}
}
