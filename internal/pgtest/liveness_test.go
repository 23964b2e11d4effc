package pgtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// These tests start several runs of the harness in one process, on one
// server (WORKSHOP_DATABASE_URL, or a container the first run starts), under
// a prefix of their own, as several test binaries sharing the server would.

// tinyShop is the shop the runs copy: the smallest, seeded in moments.
var tinyShop = shop.Scale{TopOrders: 100}

// testRuns starts runs of the harness under one prefix of a test's own.
type testRuns struct {
	prefix string
	url    string // the server of the first run, shared by the others
}

// newTestRuns returns a prefix for t's runs, under this process's, and drops
// everything under it when t ends.
func newTestRuns(t *testing.T) *testRuns {
	t.Helper()
	prefix := fmt.Sprintf("%slv%04x_", prefixFromEnv(), rand.N(1<<16))
	if _, err := parsePrefix(prefix); err != nil {
		t.Fatalf("the test's prefix, under %s: %v: set a shorter %s", prefixFromEnv(), err, workshopenv.DBPrefix)
	}
	runs := &testRuns{prefix: prefix}
	t.Cleanup(func() { // registered first: runs after every run has closed
		if runs.url == "" {
			return
		}
		// A closed session lets go of its locks a moment later, on the server.
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, runs.url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		waitFor(t, "the runs' sessions to end", func() bool {
			var n int
			require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE left(application_name, length($1)) = $1", prefix).Scan(&n))
			return n == 0
		})
		_, err = DropDatabases(ctx, runs.url, DropOptions{Prefix: prefix, Templates: true})
		assert.NoError(t, err)
		rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1", prefix)
		require.NoError(t, err)
		left, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		assert.Empty(t, left, "everything under the test's prefix is dropped")
	})
	return runs
}

// start starts a run, closed when t ends.
func (r *testRuns) start(t *testing.T) *harness {
	t.Helper()
	getenv := func(key string) string {
		switch key {
		case workshopenv.DBPrefix:
			return r.prefix
		case workshopenv.DatabaseURL:
			if r.url != "" {
				return r.url
			}
		}
		return os.Getenv(key)
	}
	h, err := start(context.Background(), getenv, startContainer)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, h.close(context.Background())) })
	if r.url == "" {
		r.url = h.server.url
	}
	return h
}

// copyFor makes the copy kind ("clone_<n>" or "read_<scale>") of the tiny shop
// for run h, and returns its name.
func copyFor(t *testing.T, h *harness, kind string) string {
	t.Helper()
	name := runName(h.prefix, h.runID, kind)
	require.NoError(t, h.copyOf(context.Background(), tinyShop, name))
	return name
}

// onLockLost makes h's lock watcher report each lost connection on the
// returned channel and wait, before it takes the lock again, until the test
// calls release (or ends).
func onLockLost(t *testing.T, h *harness) (lost <-chan error, release func()) {
	lostc, releasec := make(chan error, 1), make(chan struct{})
	h.lock.mu.Lock()
	h.lock.onLost = func(cause error) { lostc <- cause; <-releasec }
	h.lock.mu.Unlock()
	release = sync.OnceFunc(func() { close(releasec) })
	t.Cleanup(release) // runs before the run closes, which waits for its watcher
	return lostc, release
}

// lockHolder returns the process id of the session that holds run id's lock,
// 0 if none does.
func lockHolder(t *testing.T, conn *pgx.Conn, id string) int {
	t.Helper()
	const holder = `SELECT coalesce(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2`
	var pid int
	require.NoError(t, conn.QueryRow(context.Background(), holder, int64(uint32(runLockSpace)), int64(uint32(runKey(id)))).Scan(&pid))
	return pid
}

// waitFor waits until cond holds, as seen on the server, failing t after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling the server's state, not hoping for an order of events
	}
}

// sessions counts the sessions of run h on conn's server, conn's excepted.
func sessions(t *testing.T, conn *pgx.Conn, h *harness) int {
	t.Helper()
	n, err := sessionsOfRun(context.Background(), conn, h.prefix, h.runID)
	require.NoError(t, err)
	return n
}

// die ends run h as kill -9 would: its connections close and nothing it made
// is dropped. It returns once the server shows neither its lock nor a session.
func die(t *testing.T, observer *pgx.Conn, h *harness) {
	t.Helper()
	h.admin.Close()
	require.NoError(t, h.lock.close(context.Background()))
	waitFor(t, "the dead run's sessions to end", func() bool {
		return lockHolder(t, observer, h.runID) == 0 && sessions(t, observer, h) == 0
	})
}

// sweep is run h's sweep of the leftovers of ended runs (with opts), by name.
func sweep(t *testing.T, h *harness, opts DropOptions) map[string]Verdict {
	t.Helper()
	conn, err := h.admin.Acquire(context.Background())
	require.NoError(t, err)
	defer conn.Release()
	verdicts, err := reclaim(context.Background(), conn.Conn(), h.prefix, h.runID, opts)
	require.NoError(t, err)
	byName := make(map[string]Verdict)
	for _, v := range verdicts {
		byName[v.Name] = v
	}
	return byName
}

// observer is a connection of the test's own, tagged as no run.
func observer(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg.RuntimeParams["application_name"] = "liveness test"
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exists(t *testing.T, conn *pgx.Conn, database string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", database).Scan(&ok))
	return ok
}

// TestLiveRunSurvivesLosingItsLockConnection: a run mid-test, with a
// transaction open on its clone, loses the connection that holds its lock
// (pg_terminate_backend, as an idle-session clean-up would), and another run
// sweeps before it has taken the lock again. The sweep keeps the live run's
// copies, because its sessions are open, and still drops a dead run's copy
// and role; the live run takes its lock again, finishes its transaction and
// passes, and from then on its lock protects it again.
func TestLiveRunSurvivesLosingItsLockConnection(t *testing.T) {
	ctx := context.Background()
	runs := newTestRuns(t)
	live := runs.start(t)
	other := runs.start(t)
	dead := runs.start(t)
	watch := observer(t, runs.url)

	// A run that died: a clone and a role, and none of its sessions left.
	deadClone := copyFor(t, dead, "clone_1")
	deadRole := runName(runs.prefix, dead.runID, "role_1")
	_, err := dead.admin.Exec(ctx, "CREATE ROLE "+ident(deadRole))
	require.NoError(t, err)
	die(t, watch, dead)

	// The live run, mid-test: a read-only copy, and a transaction writing to a clone.
	read, err := live.reader(ctx, tinyShop)
	require.NoError(t, err)
	liveRead := runName(runs.prefix, live.runID, "read_"+tinyShop.String())
	liveClone := copyFor(t, live, "clone_1")
	clone, err := live.newPool(ctx, liveClone, nil)
	require.NoError(t, err)
	t.Cleanup(clone.Close)
	tx, err := clone.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { tx.Rollback(context.WithoutCancel(ctx)) })
	_, err = tx.Exec(ctx, "DELETE FROM comments")
	require.NoError(t, err)

	// Its lock connection is terminated; its watcher sees it, and waits for the test.
	lost, release := onLockLost(t, live)
	first := lockHolder(t, watch, live.runID)
	require.NotZero(t, first, "the live run holds its lock")
	var terminated bool
	require.NoError(t, watch.QueryRow(ctx, "SELECT pg_terminate_backend($1)", first).Scan(&terminated))
	require.True(t, terminated)
	select {
	case cause := <-lost:
		var pgErr *pgconn.PgError
		require.True(t, errors.As(cause, &pgErr), "the watcher saw the server end the session: %v", cause)
		assert.Equal(t, "57P01", pgErr.Code, "admin_shutdown: terminated by pg_terminate_backend")
	case <-time.After(30 * time.Second):
		t.Fatal("the lock watcher did not see its connection end within 30s")
	}
	waitFor(t, "the terminated session to release the live run's lock", func() bool { return lockHolder(t, watch, live.runID) == 0 })

	// Another run sweeps now, while the live run holds no lock.
	verdicts := sweep(t, other, DropOptions{})
	for _, name := range []string{liveRead, liveClone} {
		v := verdicts[name]
		assert.False(t, v.Dropped, "%s: %s", name, v.Reason)
		assert.Contains(t, v.Reason, "session(s) open", name)
		assert.True(t, exists(t, watch, name), "%s survives the sweep", name)
	}
	assert.True(t, verdicts[deadClone].Dropped, "the dead run's clone: %s", verdicts[deadClone].Reason)
	assert.True(t, verdicts["role "+deadRole].Dropped, "the dead run's role: %s", verdicts["role "+deadRole].Reason)
	assert.False(t, exists(t, watch, deadClone), "a dead run's leftovers are still swept")

	// The live run takes its lock again and passes.
	release()
	waitFor(t, "the live run to take its lock again", func() bool {
		holder := lockHolder(t, watch, live.runID)
		return holder != 0 && holder != first
	})
	require.NoError(t, live.lock.err())
	var comments int
	require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM comments").Scan(&comments))
	assert.Zero(t, comments, "its transaction goes on")
	require.NoError(t, tx.Commit(ctx))
	var users int
	require.NoError(t, read.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&users))
	assert.Equal(t, tinyShop.Users(), users, "its read-only copy is whole")
	another := copyFor(t, live, "clone_2") // its template lock was taken again too
	live.lock.mu.Lock()
	retaken := live.lock.retaken
	live.lock.mu.Unlock()
	assert.Equal(t, 1, retaken)

	// With its lock held again, even a sweep of templates keeps all of it.
	verdicts = sweep(t, other, DropOptions{Templates: true})
	for _, name := range []string{liveRead, liveClone, another} {
		assert.Equal(t, Verdict{Name: name, Reason: "run " + live.runID + " is live"}, verdicts[name])
	}
	template := templateName(runs.prefix, tinyShop)
	assert.Equal(t, Verdict{Name: template, Reason: "a live run copies it"}, verdicts[template])
}

// TestRunStopsWhenItsDatabasesWentWithItsLock: when every session of a run
// ends at once (an idle-session clean-up catching it between two tests), a
// sweep cannot tell it from a dead run and drops its copy. The run, taking
// its lock again, finds the copy gone and stops: every later call fails,
// naming what went and what to do, instead of failing on a missing database.
func TestRunStopsWhenItsDatabasesWentWithItsLock(t *testing.T) {
	ctx := context.Background()
	runs := newTestRuns(t)
	victim := runs.start(t)
	other := runs.start(t)
	watch := observer(t, runs.url)
	gone := copyFor(t, victim, "clone_1")

	lost, release := onLockLost(t, victim)
	var ended int
	require.NoError(t, watch.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
		runTag(victim.prefix, victim.runID)).Scan(&ended))
	require.GreaterOrEqual(t, ended, 2, "its lock connection and its pool's")
	select {
	case <-lost:
	case <-time.After(30 * time.Second):
		t.Fatal("the lock watcher did not see its connection end within 30s")
	}
	waitFor(t, "every session of the run to end", func() bool {
		return lockHolder(t, watch, victim.runID) == 0 && sessions(t, watch, victim) == 0
	})
	verdicts := sweep(t, other, DropOptions{})
	require.True(t, verdicts[gone].Dropped, "nothing shows the run live: %s", verdicts[gone].Reason)

	release()
	waitFor(t, "the run to stop", func() bool { return victim.lock.err() != nil })
	stopped := victim.lock.err()
	for _, want := range []string{"run " + victim.runID + " stopped", "held no lock: database " + gone + " dropped by another run's sweep", "TRAINER.md"} {
		assert.Contains(t, stopped.Error(), want)
	}
	assert.ErrorIs(t, stopped, errRunGone)
	_, err := victim.template(ctx, tinyShop)
	assert.ErrorIs(t, err, errRunGone, "every later call fails with the reason")
	assert.NotZero(t, lockHolder(t, watch, victim.runID), "it keeps its lock: what survived stays its own until it ends")
}

// TestSweepKeepsACopyASessionIsOn: a copy whose run holds no lock is still
// kept while any session is on it, whatever its application_name (a psql a
// trainee left open on it); once the session ends, the copy goes.
func TestSweepKeepsACopyASessionIsOn(t *testing.T) {
	ctx := context.Background()
	runs := newTestRuns(t)
	sweeper := runs.start(t)
	ended := runs.start(t)
	watch := observer(t, runs.url)
	leftover := copyFor(t, ended, "clone_1")
	die(t, watch, ended)

	cfg, err := pgx.ParseConfig(runs.url)
	require.NoError(t, err)
	cfg.Database = leftover
	cfg.RuntimeParams["application_name"] = "psql"
	psql, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { psql.Close(ctx) })

	v := sweep(t, sweeper, DropOptions{})[leftover]
	assert.False(t, v.Dropped)
	assert.Equal(t, "run "+ended.runID+" holds no lock but has 1 session(s) open: it lost its lock connection, or is still ending", v.Reason)
	assert.True(t, exists(t, watch, leftover))

	require.NoError(t, psql.Close(ctx))
	waitFor(t, "the session on the leftover copy to end", func() bool { return sessions(t, watch, ended) == 0 })
	v = sweep(t, sweeper, DropOptions{})[leftover]
	assert.True(t, v.Dropped, v.Reason)
	assert.False(t, exists(t, watch, leftover))
}

// TestEveryConnectionOfARunCarriesItsTag: the pools a run hands out, its lock
// connection and a PgBouncer in front of its copy all show the run's tag in
// pg_stat_activity, so that a sweep sees the run in any of them.
func TestEveryConnectionOfARunCarriesItsTag(t *testing.T) {
	ctx := context.Background()
	runs := newTestRuns(t)
	h := runs.start(t)
	watch := observer(t, runs.url)
	read, err := h.reader(ctx, tinyShop)
	require.NoError(t, err)
	clone, err := h.newPool(ctx, copyFor(t, h, "clone_1"), nil)
	require.NoError(t, err)
	t.Cleanup(clone.Close)
	through := PgBouncer(t, clone.Config().ConnConfig, PgBouncerConfig{PoolSize: 1})
	through.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	bounced, err := pgx.ConnectConfig(ctx, through)
	require.NoError(t, err)
	t.Cleanup(func() { bounced.Close(ctx) })
	for _, q := range []interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}{h.admin, read, clone, bounced} {
		_, err := q.Exec(ctx, "SELECT 1")
		require.NoError(t, err)
	}

	tag := runTag(h.prefix, h.runID)
	const byDatabase = `SELECT datname, application_name, count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND (left(datname, length($2)) = $2 OR application_name = $1)
		GROUP BY 1, 2 ORDER BY 1, 2`
	rows, err := watch.Query(ctx, byDatabase, tag, tag+"_")
	require.NoError(t, err)
	type sessions struct {
		Database, Application string
		Count                 int
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[sessions])
	require.NoError(t, err)
	perDatabase := make(map[string]int)
	for _, s := range got {
		assert.Equal(t, tag, s.Application, "%d session(s) on %s", s.Count, s.Database)
		perDatabase[s.Database] += s.Count
	}
	assert.Len(t, perDatabase, 3, "%v", got)
	assert.GreaterOrEqual(t, perDatabase[watch.Config().Database], 2, "the lock's and the admin pool's: %v", got)
	assert.Equal(t, 1, perDatabase[read.Config().ConnConfig.Database], "%v", got)
	assert.Equal(t, 2, perDatabase[clone.Config().ConnConfig.Database], "the pool's and PgBouncer's: %v", got)
}
