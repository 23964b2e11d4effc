package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// How a run stays provably live on a server it shares.
//
// A run holds its advisory lock on a connection of its own, and every
// connection it opens carries its tag, <prefix>run_<run id>, as
// application_name: its pools, the PgBouncer in front of them, its replica's
// stream. Another run's sweep drops what a run made only when both say it has
// ended: its lock is free, and pg_stat_activity shows no session that carries
// its tag, is on one of its databases or logs in as one of its roles.
//
// The lock connection alone can be lost while the run goes on: a DBA's
// idle-session cleanup, a PgBouncer or a network blip ends it, and
// PostgreSQL then releases the lock. A goroutine waits on that connection
// and, when it ends, takes the lock again on a new one within seconds, with
// the shared locks on the templates the run copies; then it checks that every
// database and role the run holds is still there. If one went meanwhile (a
// sweep found neither the lock nor a session), or the lock cannot be taken
// again within lockRetakeTimeout, the run stops: every later call of the
// harness fails, saying why.

// lockRetakeTimeout bounds the taking again of a lost run lock: connecting,
// and waiting for a sweep that holds the lock while it looks.
const lockRetakeTimeout = 30 * time.Second

// runTag is the application_name of every connection of run id under prefix.
func runTag(prefix, id string) string { return prefix + "run_" + id }

// errRunGone says that something the run made went while its lock was lost.
var errRunGone = errors.New("what the run made went while it held no lock")

// runLock is a run's advisory lock, and a shared lock on each template it
// copies, held on a connection that a goroutine watches and replaces when it
// is lost.
type runLock struct {
	id     string
	config *pgx.ConnConfig // tagged with the run's application_name
	// check says whether everything the run holds is still there, on a
	// connection that has just taken the lock again; an error wrapping
	// errRunGone names what went.
	check func(ctx context.Context, conn *pgx.Conn) error

	stop context.CancelFunc
	done chan struct{} // closed when the watcher returns

	mu      sync.Mutex
	conn    *pgx.Conn     // the connection holding the locks; the watcher's alone
	queue   []lockRequest // template locks asked for, served by the watcher
	wake    context.CancelFunc
	using   []string        // templates whose shared lock conn holds
	failed  error           // set once the run cannot prove itself live
	onLost  func(err error) // a test's hook: called when the loss is seen, before the lock is taken again
	retaken int             // how many times the lock was taken again
	closed  bool
}

// lockRequest asks the watcher for a shared lock on template.
type lockRequest struct {
	template string
	done     chan error
}

// takeRunLock connects with config, picks a run id whose lock nobody holds,
// takes it, tags the session with prefix and the id, and starts watching the
// connection. check is run after each retake.
func takeRunLock(ctx context.Context, config *pgx.ConnConfig, prefix string, check func(context.Context, *pgx.Conn) error) (*runLock, error) {
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return nil, err
	}
	id, err := holdRunLock(ctx, conn)
	if err == nil {
		_, err = conn.Exec(ctx, "SELECT set_config('application_name', $1, false)", runTag(prefix, id))
		if err != nil {
			err = fmt.Errorf("tag the lock connection of run %s: %w", id, err)
		}
	}
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	l := &runLock{id: id, config: config.Copy(), check: check, conn: conn, done: make(chan struct{}), wake: func() {}}
	l.config.RuntimeParams["application_name"] = runTag(prefix, id)
	var watchCtx context.Context
	watchCtx, l.stop = context.WithCancel(context.WithoutCancel(ctx))
	go l.watch(watchCtx)
	return l, nil
}

// holdRunLock picks a run id whose advisory lock nobody holds and takes that
// lock on conn, for as long as the session lives.
func holdRunLock(ctx context.Context, conn *pgx.Conn) (string, error) {
	for range 10 {
		id := newRunID()
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1::int4, $2::int4)", runLockSpace, runKey(id)).Scan(&ok); err != nil {
			return "", fmt.Errorf("take the run lock of %s: %w", id, err)
		}
		if ok {
			return id, nil
		}
	}
	return "", errors.New("take a run lock: 10 random run ids were all taken")
}

// shareTemplate takes, once per run, a shared lock on template name: nobody
// drops a template while a live run may copy it.
func (l *runLock) shareTemplate(ctx context.Context, name string) error {
	req := lockRequest{template: name, done: make(chan error, 1)}
	l.mu.Lock()
	if l.failed != nil || l.closed {
		err := l.failed
		l.mu.Unlock()
		if err == nil {
			err = fmt.Errorf("lock template %s for use: run %s has ended", name, l.id)
		}
		return err
	}
	l.queue = append(l.queue, req)
	wake := l.wake
	l.mu.Unlock()
	wake() // the watcher stops waiting on the connection and serves the queue
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("lock template %s for use: %w", name, ctx.Err())
	}
}

// err returns why the run stopped, or nil while it is live.
func (l *runLock) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// close stops watching and closes the connection, which releases the locks.
func (l *runLock) close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.stop()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, req := range l.queue {
		req.done <- fmt.Errorf("lock template %s for use: run %s has ended", req.template, l.id)
	}
	l.queue = nil
	if l.conn == nil {
		return nil
	}
	return l.conn.Close(ctx)
}

// watch serves template lock requests and otherwise waits on the connection
// until it ends or ctx does; a lost connection is replaced.
func (l *runLock) watch(ctx context.Context) {
	defer close(l.done)
	for {
		l.mu.Lock()
		queue := l.queue
		l.queue = nil
		waitCtx, wake := context.WithCancel(ctx)
		l.wake = wake
		conn, failed := l.conn, l.failed
		l.mu.Unlock()

		for _, req := range queue {
			req.done <- l.serve(ctx, req.template)
		}
		if len(queue) == 0 && failed == nil {
			// Nobody LISTENs here: this returns when waitCtx ends (a
			// request, or close) or the connection does.
			err := conn.PgConn().WaitForNotification(waitCtx)
			if err != nil && waitCtx.Err() == nil {
				l.retake(ctx, err)
			}
		}
		wake()
		if failed != nil {
			<-ctx.Done() // still holding what it could; requests get the failure
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// serve takes the shared lock on template, taking the run lock again first
// if the connection turns out lost.
func (l *runLock) serve(ctx context.Context, template string) error {
	if err := l.err(); err != nil {
		return err
	}
	if slices.Contains(l.using, template) {
		return nil
	}
	err := shareLock(ctx, l.conn, template)
	if err != nil && l.conn.IsClosed() && ctx.Err() == nil {
		if l.retake(ctx, err) {
			err = shareLock(ctx, l.conn, template)
		} else {
			err = l.err()
		}
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.using = append(l.using, template)
	l.mu.Unlock()
	return nil
}

// shareLock takes the shared lock on template on conn.
func shareLock(ctx context.Context, conn *pgx.Conn, template string) error {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock_shared($1::int4, $2::int4)", templateLockSpace, templateKey(template)); err != nil {
		return fmt.Errorf("lock template %s for use: %w", template, err)
	}
	return nil
}

// retake takes the run's locks again on a new connection after cause ended
// the old one, and reports whether it did; if it cannot, or the run lost
// something meanwhile, it sets l.failed and says so on stderr.
func (l *runLock) retake(ctx context.Context, cause error) bool {
	l.conn.Close(ctx) // already closed by the server, or broken
	l.mu.Lock()
	hook := l.onLost
	l.mu.Unlock()
	if hook != nil {
		hook(cause)
	}
	fmt.Fprintf(os.Stderr, "pgtest: run %s lost the connection holding its lock (%v); taking it again\n", l.id, cause)
	retakeCtx, cancel := context.WithTimeout(ctx, lockRetakeTimeout)
	defer cancel()
	var err error
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		var conn *pgx.Conn
		conn, err = l.take(retakeCtx)
		if conn != nil { // holding the lock: what survived stays the run's
			l.mu.Lock()
			l.conn = conn
			l.retaken++
			l.mu.Unlock()
		}
		if err == nil {
			fmt.Fprintf(os.Stderr, "pgtest: run %s took its lock again\n", l.id)
			return true
		}
		if errors.Is(err, errRunGone) || ctx.Err() != nil {
			break
		}
		select {
		case <-retakeCtx.Done():
		case <-time.After(backoff): // a server that refused: try again shortly
		}
		if retakeCtx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil { // the run is ending: nothing to say
		return false
	}
	failure := fmt.Errorf("pgtest: run %s stopped: the connection holding its lock ended (%v), "+
		"and the lock could not be taken again safely: %w. "+
		"Something ends idle sessions on this server (an idle-session timeout, a PgBouncer or proxy "+
		"in front of it, a DBA's clean-up); run the tests again, and see the trainer's guide "+
		"(lessons/TRAINER.md) for what a server shared by a room needs", l.id, cause, err)
	fmt.Fprintln(os.Stderr, failure)
	l.mu.Lock()
	l.failed = failure
	l.mu.Unlock()
	return false
}

// take connects, takes the run lock and the template locks, and checks that
// the run's databases and roles are all there. It returns the connection
// whenever it holds the run lock, even if the check failed.
func (l *runLock) take(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.config)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	// Blocks while a sweep holds the lock to look at this run.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1::int4, $2::int4)", runLockSpace, runKey(l.id)); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("take the lock of run %s: %w", l.id, err)
	}
	l.mu.Lock()
	using := slices.Clone(l.using)
	l.mu.Unlock()
	for _, template := range using {
		if err := shareLock(ctx, conn, template); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	if l.check != nil {
		if err := l.check(ctx, conn); err != nil {
			return conn, err
		}
	}
	return conn, nil
}

// sessionsOfRun counts, on conn, the sessions but conn's own that belong to
// run id under prefix: those tagged with its application_name, on one of its
// databases, or logged in as one of its roles.
func sessionsOfRun(ctx context.Context, conn *pgx.Conn, prefix, id string) (int, error) {
	const sessions = `SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
		AND (left(application_name, length($1)) = $1 OR left(datname, length($2)) = $2 OR left(usename, length($2)) = $2)`
	tag := runTag(prefix, id)
	var n int
	if err := conn.QueryRow(ctx, sessions, tag, tag+"_").Scan(&n); err != nil {
		return 0, fmt.Errorf("count the sessions of run %s: %w", id, err)
	}
	return n, nil
}

// claimEndedRun takes, on conn, the lock of run id under prefix if the run
// has ended: its lock is free and no session of it is open. It returns a
// release that gives the lock back, or why the run counts as live.
func claimEndedRun(ctx context.Context, conn *pgx.Conn, prefix, id string) (release func() error, live string, err error) {
	var free bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1::int4, $2::int4)", runLockSpace, runKey(id)).Scan(&free); err != nil {
		return nil, "", fmt.Errorf("try the lock of run %s: %w", id, err)
	}
	if !free {
		return nil, "run " + id + " is live", nil
	}
	release = func() error {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1::int4, $2::int4)", runLockSpace, runKey(id)); err != nil {
			return fmt.Errorf("release the lock of run %s: %w", id, err)
		}
		return nil
	}
	n, err := sessionsOfRun(ctx, conn, prefix, id)
	if err != nil || n > 0 {
		err = errors.Join(err, release())
		return nil, fmt.Sprintf("run %s holds no lock but has %d session(s) open: it lost its lock connection, or is still ending", id, n), err
	}
	return release, "", nil
}

// missingOf returns which of the databases and roles named are not on the
// server conn is on, in order.
func missingOf(ctx context.Context, conn *pgx.Conn, databases, roles []string) ([]string, error) {
	const missing = `SELECT 'database ' || n FROM unnest($1::text[]) n WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = n)
		UNION ALL SELECT 'role ' || n FROM unnest($2::text[]) n WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = n) ORDER BY 1`
	rows, err := conn.Query(ctx, missing, databases, roles)
	if err != nil {
		return nil, fmt.Errorf("look for the run's databases and roles: %w", err)
	}
	gone, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("look for the run's databases and roles: %w", err)
	}
	return gone, nil
}

// owned is what a run has made and not yet dropped, by name.
type owned struct {
	mu        sync.Mutex
	databases map[string]bool
	roles     map[string]bool
}

func (o *owned) add(set *map[string]bool, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if *set == nil {
		*set = make(map[string]bool)
	}
	(*set)[name] = true
}

func (o *owned) remove(set *map[string]bool, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(*set, name)
}

// addDatabase records a database the run made; removeDatabase is called
// before it is dropped, so that a drop under way never looks like a loss.
func (o *owned) addDatabase(name string)    { o.add(&o.databases, name) }
func (o *owned) removeDatabase(name string) { o.remove(&o.databases, name) }
func (o *owned) addRole(name string)        { o.add(&o.roles, name) }
func (o *owned) removeRole(name string)     { o.remove(&o.roles, name) }

// check returns an error wrapping errRunGone if a database or role of o is
// not on the server conn is on.
func (o *owned) check(ctx context.Context, conn *pgx.Conn) error {
	o.mu.Lock()
	databases, roles := keys(o.databases), keys(o.roles)
	o.mu.Unlock()
	gone, err := missingOf(ctx, conn, databases, roles)
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		return fmt.Errorf("%w: %s dropped by another run's sweep", errRunGone, strings.Join(gone, ", "))
	}
	return nil
}

func keys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
