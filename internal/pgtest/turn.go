package pgtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"works-vs-scales/internal/workshopenv"
)

// The room's turn for a large check.
//
// Under a room's budget (WORKSHOP_MAX_CONNS) an exercise's check whose own
// pools need more than the budget leaves them does not shrink (it would
// check another exercise) and is not skipped (a skipped check says ok): it
// takes the room's turn, a session-level advisory lock every trainee's
// harness takes on the same key of the same server, and runs at its full
// size. So at most one such check runs at a time in the room, and the server
// needs the trainees' budgets and the largest check's excess over one budget,
// not every trainee's excess at once.
//
// The lock is held on a connection of the harness's own part of the budget
// (HarnessConns): the one that measured the round trip when the run started.
// Closing it releases the turn; so does the server when the process dies (a
// session's advisory locks end with the session). Checks of one run take the
// turn one at a time among themselves first, so that a run never holds a
// second connection for it.

// LargeTurnSpace and LargeTurnKey are the room's turn for a large check:
// pg_advisory_lock(LargeTurnSpace, LargeTurnKey), that is
// pg_advisory_lock(2004251491, 1), taken by TakeLargeTurn. A trainer sees who
// holds it and who waits in pg_locks (locktype advisory, classid 2004251491,
// objid 1).
const (
	LargeTurnSpace int32 = 0x77767363 // "wvsc": the second half says which turn
	LargeTurnKey   int32 = 1
)

// TurnKeyEnv, set to a whole number, replaces LargeTurnKey for this process:
// the harness's own tests take turns of their own, so that a room's checks on
// the same server do not wait for them, nor they for the room.
const TurnKeyEnv = "WVS_TURN_KEY"

// turnKey returns the second half of the turn's key for this process.
func turnKey() (int32, error) {
	setting := os.Getenv(TurnKeyEnv)
	if setting == "" {
		return LargeTurnKey, nil
	}
	n, err := strconv.ParseInt(setting, 10, 32)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive whole number", TurnKeyEnv, setting)
	}
	return int32(n), nil
}

// TakeLargeTurn waits for the room's turn for a check larger than a trainee's
// budget, and holds it until tb ends: its release is the first cleanup tb
// registers here, so that it runs after the cleanups of whatever tb opens
// once it has the turn (the check's pools, closed before the next trainee's
// check opens its own). what says what needs the turn, for the one line
// printed on standard error when it has to wait: who holds the turn and how
// many wait. A test under one that holds the turn (a subtest) has it
// already.
func TakeLargeTurn(tb testing.TB, what string) {
	tb.Helper()
	h := open(tb)
	var (
		conn *pgx.Conn
		mine bool // this test holds the run's own turn
	)
	var baseline int // the run's sessions on its databases when it took the turn
	tb.Cleanup(func() {
		if conn != nil {
			waitCtx, cancel := context.WithTimeout(context.Background(), handOverBound)
			h.waitForClosedSessions(waitCtx, conn, baseline)
			cancel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn.Exec(ctx, "SELECT pg_advisory_unlock_all()") // closing alone would release it a moment later
			conn.Close(ctx)
		}
		if mine {
			h.turn.mu.Lock()
			h.turn.holder = ""
			h.turn.mu.Unlock()
			<-h.turn.taken
		}
	})
	key, err := turnKey()
	if err != nil {
		tb.Fatal(err)
	}
	name := tb.Name()
	h.turn.mu.Lock()
	holder := h.turn.holder
	h.turn.mu.Unlock()
	if holder != "" && (name == holder || strings.HasPrefix(name, holder+"/")) {
		return // under the test that holds it
	}
	ctx := tb.Context()
	select {
	case h.turn.taken <- struct{}{}:
	default:
		fmt.Fprintf(os.Stderr, "pgtest: %s: waiting for this run's other large check (%s) to end\n", what, holder)
		select {
		case h.turn.taken <- struct{}{}:
		case <-ctx.Done():
			tb.Fatalf("%s: waiting for this run's other large check (%s): %v", what, holder, ctx.Err())
		}
	}
	mine = true
	h.turn.mu.Lock()
	h.turn.holder = name
	h.turn.mu.Unlock()
	conn, err = pgx.ConnectConfig(ctx, h.admin.Config().ConnConfig.Copy()) // the run's tag: its part of the budget
	if err != nil {
		tb.Fatalf("%s: connect to take the room's turn: %v", what, err)
	}
	if err := takeTurn(ctx, conn, key, what, os.Stderr); err != nil {
		tb.Fatal(err)
	}
	if baseline, err = h.databaseSessions(ctx, conn); err != nil {
		tb.Fatal(err)
	}
}

// handOverBound bounds how long a run that ends its turn waits for the
// server to end the sessions of the pools it closed.
const handOverBound = 5 * time.Second

// databaseSessions returns how many sessions carrying the run's tag the
// server has on other databases than conn's (the maintenance database): the
// harness's pools on the run's copies, and the pools made from their
// configurations (an exercise's check's).
func (h *harness) databaseSessions(ctx context.Context, conn *pgx.Conn) (int, error) {
	const sessions = `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = $1 AND datname IS DISTINCT FROM current_database()`
	var n int
	if err := conn.QueryRow(ctx, sessions, runTag(h.prefix, h.runID)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the run's sessions: %w", err)
	}
	return n, nil
}

// waitForClosedSessions waits, until ctx ends, for the server to end the
// sessions of the pools a check closed before it hands the turn on: a
// closed pool's sessions end a moment after the client closed them, and
// the next check would open its pools meanwhile. It waits until the run's
// sessions on its databases are no more than when it took the turn, or than
// the budget gives those databases.
func (h *harness) waitForClosedSessions(ctx context.Context, conn *pgx.Conn, baseline int) {
	if budget, capped, _ := workshopenv.ConnBudget(); capped {
		baseline = max(baseline, workshopenv.DatabaseConns(budget))
	}
	for {
		n, err := h.databaseSessions(ctx, conn)
		if err != nil || n <= baseline {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// takeTurn takes the turn key on conn, waiting for it if another session
// holds it; then it says once on w what waits, for whom, and how many wait
// with it.
func takeTurn(ctx context.Context, conn *pgx.Conn, key int32, what string, w io.Writer) error {
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1::int4, $2::int4)", LargeTurnSpace, key).Scan(&got); err != nil {
		return fmt.Errorf("%s: take the room's turn (%d, %d): %w", what, LargeTurnSpace, key, err)
	}
	if got {
		return nil
	}
	waiting, holder, err := TurnQueue(ctx, conn, key)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if holder == "" {
		holder = "a run that has just ended"
	}
	fmt.Fprintf(w, "pgtest: %s: waiting for another trainee's large check to end (the room runs one at a time; %s holds the turn, %d waiting before this one)\n",
		what, holder, waiting)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1::int4, $2::int4)", LargeTurnSpace, key); err != nil {
		return fmt.Errorf("%s: wait for the room's turn (%d, %d): %w", what, LargeTurnSpace, key, err)
	}
	return nil
}

// TurnQueue returns, as the server sees them now on conn's server, how many
// sessions wait for the turn key (LargeTurnKey, or a test's) and the
// application_name of the one that holds it (a run's tag: its prefix and
// run id; "session" and its process id if it has none), empty if none does.
func TurnQueue(ctx context.Context, conn *pgx.Conn, key int32) (waiting int, holder string, err error) {
	const queue = `SELECT count(*) FILTER (WHERE NOT l.granted),
			coalesce(max(coalesce(nullif(a.application_name, ''), 'session ' || l.pid)) FILTER (WHERE l.granted), '')
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.classid = $1::int8::oid AND l.objid = $2::int8::oid AND l.objsubid = 2`
	if err := conn.QueryRow(ctx, queue, int64(uint32(LargeTurnSpace)), int64(uint32(key))).Scan(&waiting, &holder); err != nil {
		return 0, "", fmt.Errorf("read who waits for the room's turn (%d, %d): %w", LargeTurnSpace, key, err)
	}
	return waiting, holder, nil
}
