package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// The harness itself: what every lesson's numbers stand on.

func TestShopHoldsTheGeneratedRows(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	var users, orders int
	require.NoError(t, db.QueryRow(context.Background(),
		"SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders)").Scan(&users, &orders))
	assert.Equal(t, shop.Small.Users(), users)
	assert.Equal(t, shop.Small.Orders(), orders)
}

func TestShopIsReadOnly(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	_, err := db.Exec(context.Background(), "DELETE FROM order_items")
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a PostgreSQL error, got %v", err)
	assert.Equal(t, "25006", pgErr.Code, "read_only_sql_transaction")
}

func TestShopCloneIsWritableAndDroppedAfter(t *testing.T) {
	var cloneName string
	t.Run("write", func(t *testing.T) {
		clone := pgtest.ShopClone(t, shop.Small)
		ctx := context.Background()
		require.NoError(t, clone.QueryRow(ctx, "SELECT current_database()").Scan(&cloneName))
		tag, err := clone.Exec(ctx, "DELETE FROM comments")
		require.NoError(t, err)
		assert.Positive(t, tag.RowsAffected())
	})
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	var exists bool
	require.NoError(t, db.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", cloneName).Scan(&exists))
	assert.False(t, exists, "clone %s dropped when its test ended", cloneName)
	var comments int
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM comments").Scan(&comments))
	assert.Positive(t, comments, "the clone's writes never reach the shared shop")
}

func TestTemplateIsSeededOnceAndReused(t *testing.T) {
	db := pgtest.Shop(t, shop.Small) // seeds the template if no earlier run did
	ctx := context.Background()
	const templateQuery = `SELECT oid, datistemplate, datallowconn FROM pg_database WHERE datname = $1`
	var oid uint32
	var isTemplate, allowsConnections bool
	name := pgtest.TemplateName(shop.Small)
	require.NoError(t, db.QueryRow(ctx, templateQuery, name).Scan(&oid, &isTemplate, &allowsConnections))
	assert.True(t, isTemplate)
	assert.False(t, allowsConnections, "nobody connects to a template, so copying it never waits")

	pgtest.ShopClone(t, shop.Small) // asks for the template again
	var oidAfter uint32
	require.NoError(t, db.QueryRow(ctx, templateQuery, name).Scan(&oidAfter, &isTemplate, &allowsConnections))
	assert.Equal(t, oid, oidAfter, "the same template, not seeded again")
}

func TestDerivedTemplateIsBuiltOnceAndCopied(t *testing.T) {
	ctx := context.Background()
	builds := 0
	d := pgtest.Derived{
		Scale: heldScale,
		Name:  "harnessv1",
		Build: func(ctx context.Context, db *pgxpool.Pool) error {
			builds++
			_, err := db.Exec(ctx, "CREATE TABLE derived AS SELECT 42 AS answer")
			return err
		},
	}
	first := pgtest.DerivedClone(t, d) // builds the template unless an earlier run did
	require.LessOrEqual(t, builds, 1)
	built := builds
	second := pgtest.DerivedClone(t, d)
	assert.Equal(t, built, builds, "the second copy reuses the template")
	_, err := first.Exec(ctx, "UPDATE derived SET answer = 7")
	require.NoError(t, err)
	var answer, users int
	require.NoError(t, second.QueryRow(ctx, "SELECT answer FROM derived").Scan(&answer))
	assert.Equal(t, 42, answer, "each copy is its own")
	require.NoError(t, second.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&users))
	assert.Equal(t, heldScale.Users(), users, "built on a copy of the shop")
	var templates int
	require.NoError(t, second.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE $1 AND datistemplate",
		pgtest.Prefix()+"tpl_%_harnessv1").Scan(&templates))
	assert.Equal(t, 1, templates, "one template, named after the shop's source and d.Name")
}

// Several runs on one server: what a room of trainees, or two CI jobs, do.

// envHoldCopies, set to 1, makes TestRunsShareOneServer a child run of
// itself (holdCopiesUntilStdinCloses): only its own child processes set it.
const envHoldCopies = "WVS_TEST_HOLD_COPIES"

// heldScale is the shop the child runs copy: the smallest, quick to seed.
var heldScale = shop.Ladder(shop.Small)[0]

// holdCopiesUntilStdinCloses is what a child run of TestRunsShareOneServer
// does: it takes a read-only copy and a clone, says their names, holds them
// until its standard input closes, then checks that both are still whole.
func holdCopiesUntilStdinCloses(t *testing.T) {
	ctx := context.Background()
	read := pgtest.Shop(t, heldScale)
	clone := pgtest.ShopClone(t, heldScale)
	var readName, cloneName string
	require.NoError(t, read.QueryRow(ctx, "SELECT current_database()").Scan(&readName))
	require.NoError(t, clone.QueryRow(ctx, "SELECT current_database()").Scan(&cloneName))
	fmt.Printf("holding %s %s\n", readName, cloneName)

	io.Copy(io.Discard, os.Stdin) // until the parent closes it

	var users int
	require.NoError(t, read.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&users), "the read copy survived")
	assert.Equal(t, heldScale.Users(), users)
	_, err := clone.Exec(ctx, "DELETE FROM comments")
	require.NoError(t, err, "the clone survived")
}

// childRun is a test process of this binary running TestRunsShareOneServer
// as a child (holdCopiesUntilStdinCloses).
type childRun struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	held   chan []string // the names of its copies, once it holds them
	exited chan struct{} // closed once it has exited and its output is read
	err    error         // how it exited, once exited is closed

	mu     sync.Mutex
	output strings.Builder
}

func (c *childRun) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.output.String()
}

// startChildRun starts a child run with the environment env added; a cleanup
// registered before it starts kills it if it still runs when the test ends.
func startChildRun(t *testing.T, env ...string) *childRun {
	t.Helper()
	c := &childRun{held: make(chan []string, 1), exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestRunsShareOneServer$", "-test.v", "-test.count=1", "-test.timeout=2m")
	c.cmd.Env = append(os.Environ(), env...)
	var err error
	c.stdin, err = c.cmd.StdinPipe()
	require.NoError(t, err)
	reader, writer := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = writer, writer
	t.Cleanup(func() {
		if c.cmd.Process != nil && c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
		}
		<-c.exited
	})
	go func() {
		scanner := bufio.NewScanner(reader)
		for scanner.Scan() {
			line := scanner.Text()
			c.mu.Lock()
			c.output.WriteString(line + "\n")
			c.mu.Unlock()
			if names, ok := strings.CutPrefix(line, "holding "); ok {
				c.held <- strings.Fields(names)
			}
		}
		io.Copy(io.Discard, reader)
	}()
	if err := c.cmd.Start(); err != nil {
		writer.Close()
		close(c.exited)
		t.Fatalf("start a child run: %v", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		writer.Close()
		close(c.exited)
	}()
	return c
}

// waitHeld returns the names of the copies c holds.
func (c *childRun) waitHeld(t *testing.T) []string {
	t.Helper()
	select {
	case names := <-c.held:
		return names
	case <-c.exited:
		t.Fatalf("a child run exited (%v) before holding its copies:\n%s", c.err, c.Output())
	case <-time.After(2 * time.Minute):
		t.Fatalf("a child run held no copies after 2 minutes:\n%s", c.Output())
	}
	return nil
}

// wait waits for c to exit and returns its exit code.
func (c *childRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("a child run did not exit after 2 minutes:\n%s", c.Output())
	}
	return c.cmd.ProcessState.ExitCode()
}

// existing returns which of names are databases on the server conn is on.
func existing(t *testing.T, conn *pgx.Conn, names ...string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY 1", names)
	require.NoError(t, err)
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return found
}

// TestRunsShareOneServer starts four runs of this binary against one server,
// under a prefix of its own: one is interrupted (SIGINT) and must drop its
// copies on the way out, one is killed (SIGKILL) and leaves them, and
// dropdbs (-n, -leftovers, and plain) runs while the other two are live. It
// proves that the live runs lose nothing and pass, that the killed run's
// copies and a superseded template are dropped, that the template live runs
// copy is kept, and that afterwards only the current template (and the names
// the harness does not own) remain.
func TestRunsShareOneServer(t *testing.T) {
	if os.Getenv(envHoldCopies) == "1" { // a child run of this test
		holdCopiesUntilStdinCloses(t)
		return
	}
	if testing.Short() {
		t.Skip("starts four test processes; skipped with -short")
	}
	ctx := context.Background()
	url := pgtest.ServerURL(t)
	parentPrefix := os.Getenv(workshopenv.DBPrefix) // valid, or the harness would have failed
	if parentPrefix == "" {
		parentPrefix = workshopenv.DefaultPrefix
	}
	prefix := fmt.Sprintf("%smp%04x_", parentPrefix, rand.N(1<<16))
	currentTemplate := prefix + strings.TrimPrefix(pgtest.TemplateName(heldScale), parentPrefix)
	superseded := fmt.Sprintf("%stpl_00000000_%s_seed%d", prefix, heldScale, pgtest.Seed)
	legacyCopy, notOurs := prefix+"clone_4242_1", prefix+"notes"

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) })
	t.Cleanup(func() { // registered before anything is made under the prefix
		_, err := pgtest.DropDatabases(ctx, url, pgtest.DropOptions{Prefix: prefix, Templates: true, Legacy: true})
		assert.NoError(t, err)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{notOurs}.Sanitize())
		assert.NoError(t, err)
	})
	for _, name := range []string{superseded, legacyCopy, notOurs} {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		require.NoError(t, err)
	}
	_, err = conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{superseded}.Sanitize()+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
	require.NoError(t, err)

	childURL := url + "?pool_max_conns=2" // four runs stay well within max_connections
	if strings.Contains(url, "?") {
		childURL = url + "&pool_max_conns=2"
	}
	env := []string{envHoldCopies + "=1", workshopenv.DBPrefix + "=" + prefix, workshopenv.DatabaseURL + "=" + childURL}
	live := []*childRun{startChildRun(t, env...), startChildRun(t, env...)}
	interrupted, killed := startChildRun(t, env...), startChildRun(t, env...)
	var liveNames []string
	for _, c := range live {
		liveNames = append(liveNames, c.waitHeld(t)...)
	}
	interruptedNames, killedNames := interrupted.waitHeld(t), killed.waitHeld(t)
	all := slices.Concat(liveNames, interruptedNames, killedNames)
	require.Len(t, all, 8)
	require.ElementsMatch(t, all, existing(t, conn, all...), "eight copies, no two named alike")

	require.NoError(t, interrupted.cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 128+int(syscall.SIGINT), interrupted.wait(t), "an interrupted run exits non-zero:\n%s", interrupted.Output())
	assert.Empty(t, existing(t, conn, interruptedNames...), "an interrupted run drops its copies on the way out")

	require.NoError(t, killed.cmd.Process.Kill())
	killed.wait(t)

	// dropdbs -n drops nothing, and never offers a live run's copy.
	verdicts, err := pgtest.DropDatabases(ctx, url, pgtest.DropOptions{Prefix: prefix, Templates: true, DryRun: true})
	require.NoError(t, err)
	for _, v := range verdicts {
		assert.False(t, v.Dropped && slices.Contains(liveNames, v.Name), "dropdbs -n offers live %s: %s", v.Name, v.Reason)
	}
	require.ElementsMatch(t, slices.Concat(liveNames, killedNames), existing(t, conn, slices.Concat(liveNames, killedNames)...),
		"a dry run drops nothing")

	// dropdbs -leftovers, while two runs are live. The killed run's lock goes
	// when PostgreSQL sees its connection closed: poll until it has.
	var droppedLive []string
	var lastErr error
	reclaimed := assert.Eventually(t, func() bool {
		verdicts, err := pgtest.DropDatabases(ctx, url, pgtest.DropOptions{Prefix: prefix})
		lastErr = err
		for _, v := range verdicts {
			if v.Dropped && slices.Contains(liveNames, v.Name) {
				droppedLive = append(droppedLive, v.Name)
			}
		}
		return err == nil && len(existing(t, conn, killedNames...)) == 0
	}, time.Minute, 50*time.Millisecond, "the killed run's copies are dropped")
	require.True(t, reclaimed, "last error: %v", lastErr)
	require.Empty(t, droppedLive, "dropdbs dropped a live run's copy")
	require.ElementsMatch(t, liveNames, existing(t, conn, liveNames...), "every live copy is still there")

	// Plain dropdbs would drop the current template too, but not while live runs copy it.
	verdicts, err = pgtest.DropDatabases(ctx, url, pgtest.DropOptions{Prefix: prefix, Templates: true})
	require.NoError(t, err)
	for _, v := range verdicts {
		require.False(t, v.Dropped, "with two runs live, dropdbs dropped %s: %s", v.Name, v.Reason)
	}
	require.ElementsMatch(t, slices.Concat(liveNames, []string{currentTemplate}), existing(t, conn, slices.Concat(liveNames, []string{currentTemplate})...))

	for _, c := range live {
		require.NoError(t, c.stdin.Close())
	}
	for _, c := range live {
		require.Equal(t, 0, c.wait(t), "a live run passes:\n%s", c.Output())
		assert.Contains(t, c.Output(), "--- PASS: TestRunsShareOneServer")
	}

	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1", prefix)
	require.NoError(t, err)
	remaining, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{currentTemplate, legacyCopy, notOurs}, remaining,
		"only the current template remains, with the names the harness never drops by itself")
}

// TestDropDatabasesReclaimsTheSlotsOfEndedRuns: a run killed while its
// replica streamed leaves a replication slot that holds WAL on the server for
// ever; dropdbs drops it, and keeps the slot of a run that still holds its
// lock.
func TestDropDatabasesReclaimsTheSlotsOfEndedRuns(t *testing.T) {
	ctx := context.Background()
	url := pgtest.ServerURL(t)
	parentPrefix := os.Getenv(workshopenv.DBPrefix)
	if parentPrefix == "" {
		parentPrefix = workshopenv.DefaultPrefix
	}
	prefix := fmt.Sprintf("%ssl%04x_", parentPrefix, rand.N(1<<16))
	ended, live := prefix+"run_0badc0de_replica", prefix+"run_1badc0de_replica"

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) })
	t.Cleanup(func() { // registered before the slots are made
		_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY($1)", []string{ended, live})
		assert.NoError(t, err)
	})
	// The live run's lock, as the harness takes it: space "wvsr", then the run id's 4 bytes.
	liveRun, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { liveRun.Close(ctx) })
	_, err = liveRun.Exec(ctx, "SELECT pg_advisory_lock($1::int4, $2::int4)", int32(0x77767372), int32(0x1badc0de))
	require.NoError(t, err)
	for _, slot := range []string{ended, live} {
		_, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1)", slot)
		require.NoError(t, err)
	}

	verdicts, err := pgtest.DropDatabases(ctx, url, pgtest.DropOptions{Prefix: prefix, DryRun: true})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{ended, live}, slotNames(t, conn, prefix), "dropdbs -n drops nothing")
	require.Len(t, verdicts, 2)

	verdicts, err = pgtest.DropDatabases(ctx, url, pgtest.DropOptions{Prefix: prefix})
	require.NoError(t, err)
	for _, v := range verdicts {
		assert.Equal(t, v.Name == ended, v.Dropped, "%s: %s", v.Name, v.Reason)
	}
	require.Equal(t, []string{live}, slotNames(t, conn, prefix), "the ended run's slot is dropped, the live run's kept")
}

// slotNames lists the replication slots named prefix….
func slotNames(t *testing.T, conn *pgx.Conn, prefix string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT slot_name FROM pg_replication_slots WHERE left(slot_name, length($1)) = $1 ORDER BY 1", prefix)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// TestAConnectionBudgetCapsTheHarnessPools: with WORKSHOP_MAX_CONNS set, a
// room's per-trainee budget, no pool the harness makes on a trainee's
// database is larger than what the harness's own part leaves; unset, the
// pool keeps pgxpool's size.
func TestAConnectionBudgetCapsTheHarnessPools(t *testing.T) {
	t.Setenv(workshopenv.MaxConns, "")
	uncapped := pgtest.ShopClone(t, shop.Small).Config().MaxConns
	t.Setenv(workshopenv.MaxConns, "6")
	require.Greater(t, uncapped, int32(2), "pgxpool's default is at least 4")
	require.Equal(t, int32(6-workshopenv.HarnessConns), pgtest.ShopClone(t, shop.Small).Config().MaxConns)
}

// TestAnExerciseCheckKeepsItsPoolUnderABudget: an exercise check's pool
// keeps its size whatever the room's budget (CheckPool): skipped, a
// trainee's check would print ok for an answer it never checked, and a
// smaller pool would check another exercise. Without a budget, or within
// it, it takes no turn and waits for none, though another session holds the
// room's turn; above it, it waits for the turn, and then runs at its size.
func TestAnExerciseCheckKeepsItsPoolUnderABudget(t *testing.T) {
	ctx := context.Background()
	key := rand.Int32N(1<<30) + 2 // a turn of this test's own, not the room's
	t.Setenv(pgtest.TurnKeyEnv, fmt.Sprint(key))
	db := pgtest.ShopClone(t, shop.Small)
	other, err := pgx.Connect(ctx, pgtest.ServerURL(t)) // another trainee, holding the turn
	require.NoError(t, err)
	t.Cleanup(func() { other.Close(context.Background()) })
	_, err = other.Exec(ctx, "SELECT pg_advisory_lock($1::int4, $2::int4)", pgtest.LargeTurnSpace, key)
	require.NoError(t, err)

	for _, budget := range []string{"", "15"} { // none; 15 less the harness's 4 and the tests' pools' 3 leaves 8
		t.Setenv(workshopenv.MaxConns, budget)
		checked := make(chan *pgxpool.Pool, 1)
		go func() { // a check that waited would hang: the test fails after HangBound instead
			t.Run("budget="+budget, func(t *testing.T) { checked <- benchkit.CheckPool(t, db, 8) })
		}()
		select {
		case pool := <-checked:
			require.Equal(t, int32(8), pool.Config().MaxConns)
		case <-time.After(benchkit.HangBound):
			t.Fatalf("a check of 8 under %s=%q waited %v for the room's turn", workshopenv.MaxConns, budget, benchkit.HangBound)
		}
		waiting, _, err := pgtest.TurnQueue(ctx, other, key)
		require.NoError(t, err)
		require.Zero(t, waiting, "under %s=%q", workshopenv.MaxConns, budget)
	}

	t.Setenv(workshopenv.MaxConns, "9") // leaves a test's own pools 2
	done := make(chan struct{})
	var pinged error
	go func() {
		defer close(done)
		t.Run("budget=9", func(t *testing.T) {
			pool := benchkit.CheckPool(t, db, 8)
			require.Equal(t, int32(8), pool.Config().MaxConns)
			pinged = pool.Ping(ctx)
		})
	}()
	waitForTurn(t, other, key, "the check above the budget to wait for the turn", func(waiting int, _ string) bool { return waiting == 1 })
	select {
	case <-done:
		t.Fatal("the check above the budget ran while another held the room's turn")
	default:
	}
	_, err = other.Exec(ctx, "SELECT pg_advisory_unlock($1::int4, $2::int4)", pgtest.LargeTurnSpace, key)
	require.NoError(t, err)
	select {
	case <-done:
		require.NoError(t, pinged, "the check's pool, once it had the turn")
	case <-time.After(benchkit.HangBound):
		t.Fatalf("the check did not run within %v of the turn's release", benchkit.HangBound)
	}
	waitForTurn(t, other, key, "the check to hand the turn on", func(waiting int, holder string) bool { return waiting == 0 && holder == "" })
}

// TestACheckTheRoomCannotRunSaysSo: a check the room cannot run at all
// (lesson 18's without the room's replica) fails a trainee's check
// (TestExerciseNN), saying it did not run; the project's tests of the check
// skip: they give no verdict.
func TestACheckTheRoomCannotRunSaysSo(t *testing.T) {
	for _, c := range []struct{ name, said string }{
		{"TestExercise18", "this check did not run, and says nothing of your answer: it needs the room's replica"},
		{"TestExercise18/sub", "this check did not run"},
		{"TestExercise18CheckFailsOnTheStart", "this check cannot run here: it needs the room's replica"},
	} {
		tb := &stoppedTB{TB: t, name: c.name}
		func() {
			defer func() { recover() }() // stoppedTB stops the call as FailNow and SkipNow do
			benchkit.CannotCheck(tb, "it needs the room's replica")
		}()
		require.Contains(t, tb.said, c.said, "%s: a trainee's check fails, the project's tests of it skip", c.name)
		require.Equal(t, strings.HasPrefix(c.name, "TestExercise18CheckFails"), tb.skipped, c.name)
	}
}

// stoppedTB is a test named name whose Fatalf and Skipf record what they say
// and stop the call.
type stoppedTB struct {
	testing.TB
	name    string
	said    string
	skipped bool
}

func (s *stoppedTB) Name() string { return s.name }
func (s *stoppedTB) Helper()      {}
func (s *stoppedTB) Fatalf(format string, args ...any) {
	s.said = fmt.Sprintf(format, args...)
	panic(s)
}
func (s *stoppedTB) Skipf(format string, args ...any) {
	s.said, s.skipped = fmt.Sprintf(format, args...), true
	panic(s)
}
