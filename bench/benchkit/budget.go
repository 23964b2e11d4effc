package benchkit

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
// database are its own part of the budget (workshopenv.HarnessConns).
const ConnsReserve = workshopenv.PoolsReserve

// OwnConns returns how many connections a benchmark's own pools may hold
// together under a room's budget: the budget less the harness's part
// (workshopenv.HarnessConns) and ConnsReserve. ok is false when no budget is
// set.
func OwnConns(tb testing.TB) (n int32, ok bool) {
	tb.Helper()
	budget, capped, err := workshopenv.ConnBudget()
	if err != nil {
		tb.Fatal(err)
	}
	if !capped {
		return 0, false
	}
	return int32(workshopenv.OwnConns(budget)), true
}

// SkipAboveBudget skips tb, saying the budget, when its own pools would hold
// more than conns connections together under a room's budget. It is for the
// points of a sweep over pool sizes (lesson 13's PoolSize): a smaller pool
// measured under a larger pool's name would be a false point of the curve,
// and the budget's own size is another point of the same sweep; and for a
// test or benchmark of a service whose pools are what it measures (lesson
// 17's wirings, shopd.Conns).
func SkipAboveBudget(tb testing.TB, conns int32) {
	tb.Helper()
	if own, ok := OwnConns(tb); ok && conns > own {
		tb.Skipf("%d connections are above this trainee's budget: %s=%s leaves %d to the test's own pools (%d for the harness, %d for its pools); the trainer's machine runs it",
			conns, workshopenv.MaxConns, budgetSetting(), own, workshopenv.HarnessConns, ConnsReserve)
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
// PeakConns sampled them.
type Peak struct {
	// Total is the most at once on the server, both below together: what a
	// room's budget (WORKSHOP_MAX_CONNS) caps.
	Total int
	// Databases is on the run's own databases (its prefix's): the harness's
	// pools on them and the tests' own pools.
	Databases int
	// Maintenance is on other databases under the run's application_name:
	// the harness's admin pool and its run's lock, its part of the budget.
	Maintenance int
	// Samples is how many times pg_stat_activity was read.
	Samples int
	// At is the sessions of the sample that set Total's peak: each
	// database with its count, and what the child had printed then.
	At string
}

// peakChildEnv, set in a child of PeakConns, says so.
const peakChildEnv = "WVS_PEAK_CONNS_CHILD"

// budgetTests matches the tests that run PeakConns themselves: a package's
// budget test, its check's turn, and bench/harness's two trainees. A child
// of PeakConns leaves them out (-test.skip), so that none runs itself again;
// one that runs there anyway, its name not matched, fails (FailInPeakChild).
const budgetTests = "^(Test(Benchmarks|Services)StayWithinARoomsBudget|TestTheCheckRunsAtItsSizeInItsTurn|TestLargeChecksTakeTheRoomsTurn)$"

// FailInPeakChild fails t if this process is a child of PeakConns: t runs
// PeakConns itself, and its name must match budgetTests for the child to
// leave it out.
func FailInPeakChild(t *testing.T) {
	t.Helper()
	if InPeakChild() {
		t.Fatalf("%s ran in a child of PeakConns and would run one itself again: name it so that benchkit's budgetTests (%s) matches it", t.Name(), budgetTests)
	}
}

// InPeakChild reports whether this process is a child PeakConns runs.
func InPeakChild() bool { return os.Getenv(peakChildEnv) == "1" }

// PeakConnsOfBenchmarks is PeakConns of the benchmarks pattern matches, and
// no test.
func PeakConnsOfBenchmarks(t *testing.T, pattern string, budget int) (Peak, string, error) {
	t.Helper()
	return PeakConns(t, "^$", pattern, budget)
}

// PeakConns runs this test binary again as a child, running the tests run
// matches and the benchmarks bench matches, once each at their smallest
// sizes (-test.benchtime=1x, -test.short; -test.v, so that skips say why)
// under a room's budget of budget connections (WORKSHOP_MAX_CONNS; 0 sets
// none) and a database prefix of its own (this run's with "c", four hex
// digits of the test binary's name and "_" added, so that no other
// package's run of the trainee's is counted; it keeps its own template of
// the shop). Meanwhile it reads pg_stat_activity every 2 ms on one
// connection of this run: the peak is sampled, and a peak shorter than that
// can pass unseen (opening a connection alone takes longer). It returns the
// peak and what the child printed.
func PeakConns(t *testing.T, run, bench string, budget int) (Peak, string, error) {
	t.Helper()
	pattern := run + " " + bench
	binary := fnv.New32a()
	binary.Write([]byte(filepath.Base(os.Args[0]))) // the package's test binary: packages run at once
	prefix := fmt.Sprintf("%sc%04x_", pgtest.Prefix(), binary.Sum32()&0xffff)
	if len(prefix) > 22 {
		t.Fatalf("the child's prefix %s would be longer than the 22 bytes a prefix may have: set a %s of at most 16 bytes", prefix, workshopenv.DBPrefix)
	}
	DropUnderPrefix(t, prefix)
	args := []string{"-test.run=" + run, "-test.skip=" + budgetTests, "-test.bench=" + bench, "-test.benchtime=1x", "-test.short", "-test.count=1", "-test.v"}
	if deadline, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+max(time.Until(deadline)-5*time.Second, time.Second).String())
	}
	cmd := exec.Command(os.Args[0], args...)
	setting := ""
	if budget > 0 {
		setting = strconv.Itoa(budget)
	}
	cmd.Env = append(os.Environ(), workshopenv.MaxConns+"="+setting, workshopenv.DBPrefix+"="+prefix,
		workshopenv.DatabaseURL+"="+pgtest.ServerURL(t), peakChildEnv+"=1")
	var out syncbuf.Buffer // read while the child writes
	cmd.Stdout, cmd.Stderr = &out, &out

	conn, err := pgx.Connect(t.Context(), pgtest.ServerURL(t))
	if err != nil {
		return Peak{}, "", fmt.Errorf("connect to sample pg_stat_activity: %w", err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	if err := cmd.Start(); err != nil {
		return Peak{}, "", fmt.Errorf("start %s as a child: %w", pattern, err)
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
				return peak, out.String(), fmt.Errorf("%s under %s=%s: %w", pattern, workshopenv.MaxConns, setting, err)
			}
			return peak, out.String(), nil
		}
		var databases, maintenance int
		if err := conn.QueryRow(t.Context(), sample, prefix).Scan(&databases, &maintenance); err != nil {
			cmd.Process.Kill()
			<-done
			return peak, out.String(), fmt.Errorf("sample pg_stat_activity: %w", err)
		}
		if databases+maintenance > peak.Total {
			peak.Total = databases + maintenance
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

// RoomBudget is the budget the lessons' budget tests hold a trainee to: 9,
// what ten trainees' budgets alone would have of PostgreSQL's default 100
// connections less its 3 reserved ones. With the largest exercise check's
// turn on top (workshopenv.CheckExcess), ten trainees fit at 7
// (lessons/TRAINER.md, "A connection budget").
const RoomBudget = 9

// RequireWithinBudget runs PeakConns of run and bench under budget and fails
// t unless the peak on the server, the harness's own included, is within
// it; it returns the peak and what the child printed, for t's own
// assertions (a child whose every test skipped holds none). It fails t in a
// child of PeakConns (FailInPeakChild: the child leaves the budget tests
// out), and skips it under a budget of this run's own (a room's trainee: the
// child's budget would come on top of it).
func RequireWithinBudget(t *testing.T, run, bench string, budget int) (Peak, string) {
	t.Helper()
	FailInPeakChild(t)
	if set, capped, _ := workshopenv.ConnBudget(); capped {
		// In a room: the child's budget would come on top of this run's.
		t.Skipf("a test of the budget itself runs a child under a budget of %d beside this run's own connections, more than this trainee's %s=%d: it runs on the trainer's machine, with %s unset",
			budget, workshopenv.MaxConns, set, workshopenv.MaxConns)
	}
	peak, out, err := PeakConns(t, run, bench, budget)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("budget %d: peak %+v; %d tests and benchmarks ran, %d skipped for the budget", budget, peak,
		strings.Count(out, "--- PASS")+strings.Count(out, " ns/op"), strings.Count(out, "this trainee's budget"))
	if peak.Samples == 0 {
		t.Fatalf("the sampler read pg_stat_activity not once while the child ran\n%s", out)
	}
	if peak.Total > budget {
		t.Fatalf("the child held %d connections at once (%d on its databases, %d the harness's), above %s=%d; at the peak: %s\n%s",
			peak.Total, peak.Databases, peak.Maintenance, workshopenv.MaxConns, budget, peak.At, out)
	}
	if peak.Maintenance > workshopenv.HarnessConns {
		t.Errorf("the harness held %d connections of its own, above its part of the budget, %d", peak.Maintenance, workshopenv.HarnessConns)
	}
	return peak, out
}

// RequireCheckWithinItsTurn runs PeakConns of the project's test of an
// exercise's check that run matches (its pass on the answer) under budget,
// where its pools of pool connections together do not fit: the check takes
// the room's turn (CheckConns) and runs at its full size. It fails t unless
// the check ran and passed, and the peak on the server, the harness's own
// included, stayed within the budget and the check's excess over it (pool
// less what the budget leaves a test's own pools): what the room's
// arithmetic in lessons/TRAINER.md counts for the one check that holds the
// turn. It returns the peak and what the child printed. It fails and skips where
// RequireWithinBudget does.
func RequireCheckWithinItsTurn(t *testing.T, run string, budget int, pool int32) (Peak, string) {
	t.Helper()
	FailInPeakChild(t)
	if set, capped, _ := workshopenv.ConnBudget(); capped {
		t.Skipf("a test of the budget itself runs a child under a budget of %d beside this run's own connections, more than this trainee's %s=%d: it runs on the trainer's machine, with %s unset",
			budget, workshopenv.MaxConns, set, workshopenv.MaxConns)
	}
	if pool > workshopenv.LargestCheckPools {
		t.Fatalf("the check's pools, %d, are above workshopenv.LargestCheckPools, %d, the largest check doctor and lessons/TRAINER.md weigh a room at", pool, workshopenv.LargestCheckPools)
	}
	own, excess := workshopenv.OwnConns(budget), workshopenv.CheckExcess(budget, int(pool))
	peak, out, err := PeakConns(t, run, "^$", budget)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s at a budget of %d: peak %+v; its pools' %d less the %d the budget leaves them is an excess of %d",
		run, budget, peak, pool, own, excess)
	if !strings.Contains(out, "--- PASS: ") || strings.Contains(out, "--- SKIP: ") {
		t.Fatalf("the check did not run and pass under %s=%d\n%s", workshopenv.MaxConns, budget, out)
	}
	if peak.Total > budget+excess {
		t.Fatalf("the check held %d connections at once (%d on its databases, %d the harness's), above %s=%d and its excess of %d; at the peak: %s\n%s",
			peak.Total, peak.Databases, peak.Maintenance, workshopenv.MaxConns, budget, excess, peak.At, out)
	}
	if peak.Maintenance > workshopenv.HarnessConns {
		t.Errorf("the harness held %d connections of its own, above its part of the budget, %d", peak.Maintenance, workshopenv.HarnessConns)
	}
	return peak, out
}
