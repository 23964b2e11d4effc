package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/syncbuf"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// A large check, played by two trainees of a room: each a child process of
// its own, with a prefix of its own, under a budget too small for the
// check's pool.
const (
	largeCheckBudget = 7 // the smallest room budget the trainer's guide allows for: it leaves a test's own pools 1
	largeCheckPool   = 5 // 4 more than that
	// largeCheckChildEnv names the child's part: "hold" runs the check.
	largeCheckChildEnv = "WVS_LARGE_CHECK_CHILD"
	// largeCheckHolds is what the child prints once its pool is full.
	largeCheckHolds = "LARGE CHECK HOLDS ITS POOL"
)

// TestLargeChecksTakeTheRoomsTurn: two trainees' checks that need more than
// their budget (WORKSHOP_MAX_CONNS) run one at a time, at their full size.
// The first takes the room's turn and holds its whole pool until the test
// lets it go (a barrier: its standard input closing); the second, started
// then, waits for the turn on the server, says once that it waits and for
// whom, and holds nothing beyond its budget meanwhile; when the first ends,
// the second runs. Its process is then killed while it holds the turn, and
// the server frees the turn with its session. Throughout, the two
// trainees' connections together, the harness's own included, never exceed
// two budgets and the check's excess over one, both at each step and as
// pg_stat_activity sampled them every 2 ms.
func TestLargeChecksTakeTheRoomsTurn(t *testing.T) {
	if os.Getenv(largeCheckChildEnv) == "hold" {
		holdALargeCheck(t)
		return
	}
	benchkit.FailInPeakChild(t)
	if set, capped, _ := workshopenv.ConnBudget(); capped {
		t.Skipf("it plays two trainees of %d connections each beside this run's own, more than this trainee's %s=%d: it runs on the trainer's machine, with %s unset",
			largeCheckBudget, workshopenv.MaxConns, set, workshopenv.MaxConns)
	}
	ctx := context.Background()
	key := rand.Int32N(1<<30) + 2 // a turn of this test's own: a room on the same server keeps its own
	room := pgtest.Prefix() + "lg"
	first, second := room+"1_", room+"2_"
	benchkit.DropUnderPrefix(t, first)
	benchkit.DropUnderPrefix(t, second)
	watch, err := pgx.Connect(ctx, pgtest.ServerURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { watch.Close(context.Background()) })
	bound := 2*largeCheckBudget + largeCheckPool - 1 // 1: what the budget leaves a test's own pools
	peak := sampleConnsUnder(t, room)

	a := startLargeCheck(t, first, key)
	a.waitFor(t, largeCheckHolds)
	b := startLargeCheck(t, second, key)
	waitForTurn(t, watch, key, "the second check to wait for the turn", func(waiting int, holder string) bool {
		return waiting == 1 && strings.HasPrefix(holder, first+"run_")
	})
	assert.NotContains(t, b.said(), largeCheckHolds, "the second check ran while the first held the turn")
	assert.LessOrEqual(t, connsUnder(t, watch, room), bound, "the first check running, the second waiting")

	a.release(t)
	require.NoError(t, a.wait(), "the first check\n%s", a.said())
	b.waitFor(t, largeCheckHolds)
	_, holder, err := pgtest.TurnQueue(ctx, watch, key)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(holder, second+"run_"), "the second check holds the turn: %q does", holder)
	assert.LessOrEqual(t, connsUnder(t, watch, room), bound, "the second check running")
	said := b.said()
	assert.Equal(t, 1, strings.Count(said, "waiting for another trainee's large check to end"), "it says once that it waits\n%s", said)
	assert.Contains(t, said, fmt.Sprintf("needs a pool of %d connections, 4 more than this trainee's budget, %s=%d, leaves", largeCheckPool, workshopenv.MaxConns, largeCheckBudget))
	assert.Contains(t, said, first+"run_", "it names who holds the turn")

	b.kill(t)
	waitForTurn(t, watch, key, "the server to free the turn of a killed process", func(waiting int, holder string) bool {
		return waiting == 0 && holder == ""
	})
	sampled := peak()
	t.Logf("the two trainees' peak, sampled: %+v; bound %d", sampled, bound)
	assert.Positive(t, sampled.Samples)
	assert.LessOrEqual(t, sampled.Total, bound, "at the peak: %s", sampled.At)
}

// holdALargeCheck is the child's part: an exercise's check whose pool is
// larger than the budget (benchkit.CheckPool), holding every connection of
// it until its standard input closes.
func holdALargeCheck(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	pool := benchkit.CheckPool(t, db, largeCheckPool)
	for range largeCheckPool {
		conn, err := pool.Acquire(context.Background())
		require.NoError(t, err)
		defer conn.Release()
	}
	fmt.Println(largeCheckHolds)
	io.Copy(io.Discard, os.Stdin) // the parent's barrier
}

// A largeCheck is a child process running holdALargeCheck.
type largeCheck struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   syncbuf.Buffer
	lines chan string
	done  chan error
}

// startLargeCheck runs holdALargeCheck in a child under prefix, a room's
// budget of largeCheckBudget, and the turn key.
func startLargeCheck(t *testing.T, prefix string, key int32) *largeCheck {
	t.Helper()
	args := []string{"-test.run=^" + t.Name() + "$", "-test.count=1", "-test.v"}
	if deadline, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+max(time.Until(deadline)-5*time.Second, time.Second).String())
	}
	c := &largeCheck{cmd: exec.Command(os.Args[0], args...), lines: make(chan string, 100), done: make(chan error, 1)}
	c.cmd.Env = append(os.Environ(), largeCheckChildEnv+"=hold", workshopenv.DBPrefix+"="+prefix,
		workshopenv.MaxConns+"="+strconv.Itoa(largeCheckBudget), pgtest.TurnKeyEnv+"="+strconv.Itoa(int(key)),
		workshopenv.DatabaseURL+"="+pgtest.ServerURL(t))
	var err error
	c.stdin, err = c.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	c.cmd.Stderr = &c.out
	require.NoError(t, c.cmd.Start(), "start the check under %s", prefix)
	t.Cleanup(func() { // a failed test leaves no child behind
		c.stdin.Close()
		c.cmd.Process.Kill()
		<-c.done
	})
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			c.out.Write([]byte(lines.Text() + "\n"))
			select {
			case c.lines <- lines.Text():
			default:
			}
		}
		close(c.lines)
		c.done <- c.cmd.Wait()
		close(c.done)
	}()
	return c
}

// waitFor waits until the child prints a line holding s, failing t if it
// ends first or takes benchkit.HangBound.
func (c *largeCheck) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(benchkit.HangBound)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("the check ended before it said %q\n%s", s, c.said())
			}
			if strings.Contains(line, s) {
				return
			}
		case <-timeout:
			t.Fatalf("the check did not say %q within %v\n%s", s, benchkit.HangBound, c.said())
		}
	}
}

// said returns what the child printed so far.
func (c *largeCheck) said() string { return c.out.String() }

// release lets the child's check end.
func (c *largeCheck) release(t *testing.T) { require.NoError(t, c.stdin.Close()) }

// wait returns how the child exited.
func (c *largeCheck) wait() error { return <-c.done }

// kill kills the child, as a trainee's machine that dies does.
func (c *largeCheck) kill(t *testing.T) {
	require.NoError(t, c.cmd.Process.Kill())
	<-c.done
}

// waitForTurn waits until the turn key's queue, as the server shows it,
// satisfies cond, failing t after benchkit.HangBound.
func waitForTurn(t *testing.T, conn *pgx.Conn, key int32, what string, cond func(waiting int, holder string) bool) {
	t.Helper()
	deadline := time.Now().Add(benchkit.HangBound)
	for {
		waiting, holder, err := pgtest.TurnQueue(context.Background(), conn, key)
		require.NoError(t, err)
		if cond(waiting, holder) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %d waiting, held by %q", benchkit.HangBound, what, waiting, holder)
		}
		time.Sleep(5 * time.Millisecond) // polling the server's state, not hoping for an order of events
	}
}

// connsUnder counts the sessions on the server whose database or
// application_name starts with prefix (the trainees' copies and their
// harnesses' own connections), conn's excepted.
func connsUnder(t *testing.T, conn *pgx.Conn, prefix string) int {
	t.Helper()
	const count = `SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
		AND (left(datname, length($1)) = $1 OR left(application_name, length($1)) = $1)`
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), count, prefix).Scan(&n))
	return n
}

// sampleConnsUnder reads connsUnder every 2 ms on a connection of its own
// until peak is called, which returns the most it saw.
func sampleConnsUnder(t *testing.T, prefix string) (peak func() benchkit.Peak) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.ServerURL(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	conn, err := pool.Acquire(context.Background())
	require.NoError(t, err)
	t.Cleanup(conn.Release)
	stop, stopped := make(chan struct{}), make(chan struct{})
	var p benchkit.Peak
	go func() {
		defer close(stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			const sample = `SELECT count(*), coalesce(string_agg(coalesce(datname, '-') || ' ' || application_name, ', '), '')
				FROM pg_stat_activity WHERE pid <> pg_backend_pid()
				AND (left(datname, length($1)) = $1 OR left(application_name, length($1)) = $1)`
			var n int
			var at string
			if err := conn.QueryRow(context.Background(), sample, prefix).Scan(&n, &at); err != nil {
				p.At = err.Error()
				return
			}
			p.Samples++
			if n > p.Total {
				p.Total, p.At = n, at
			}
		}
	}()
	var once sync.Once
	peak = func() benchkit.Peak {
		once.Do(func() { close(stop); <-stopped })
		return p
	}
	t.Cleanup(func() { peak() })
	return peak
}
