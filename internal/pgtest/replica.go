package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"

	"works-vs-scales/internal/rttproxy"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// A streaming replica of the harness's server (lesson 18).
//
// The first test that asks for one makes it, and every later test of the
// binary shares it: pg_basebackup -R copies the primary's whole cluster into a
// temporary directory, through a replication slot named after the run
// (<prefix>run_<run id>_replica) so the primary keeps the WAL the replica has
// not received yet, and postgres serves the copy as a hot standby on a free
// loopback port, as the postgres OS user when the tests run as root (the
// server binaries refuse root). [StopReplica], which [Main] runs at the end,
// stops it, drops the slot and removes the directory. The server
// is a child that the kernel kills if the test binary dies; a slot left by a
// killed run is dropped by the next run, once the run's lock and sessions
// show it gone.

// A replica named by WORKSHOP_REPLICA_URL is the room's, one for every
// trainee, unless WORKSHOP_REPLICA_OWN=1 says it is the trainee's own (as
// docker-compose's is): the harness changes no setting on the room's.
// [SetReplicaDelay] there changes nothing, and a test whose delay is not the
// one the replica has is skipped, saying so: a delay set on it would be every
// trainee's at once (one trainee's minute-long check would stall the others'
// replay, and each test's cleanup would put 0 back under another's feet).
//
// On a replica of the trainee's own, the user of WORKSHOP_REPLICA_URL must be
// a superuser, or be granted ALTER SYSTEM on recovery_min_apply_delay and
// pg_reload_conf(), for [SetReplicaDelay], which changes its
// recovery_min_apply_delay with ALTER SYSTEM; [StopReplica] puts back the
// value it had, even after Ctrl-C.

// replicaStall is how long the copy, the start or the replay of the replica
// may go without progress before the harness gives up on it. Nothing bounds
// how long each takes while it moves: the copy is of the whole server, which
// on a server many share holds everyone's databases, and on a busy machine
// it took more than the fixed two minutes that once bounded it.
const replicaStall = 2 * time.Minute

const howToGetAReplica = `Give lesson 18 a streaming replica in one of two ways:

  1. Let the harness start one on this machine. It needs the PostgreSQL server
     binaries of the server's major version here (pg_basebackup, postgres), and
     the server's DBA to let the user of WORKSHOP_DATABASE_URL, and only that
     user, copy the server: the role has REPLICATION, pg_hba.conf has a
     replication line for that role alone from this machine (with its password,
     never trust for all), and a max_wal_senders slot is free. What to grant,
     and why the copy is of the whole server: lessons/TRAINER.md, "What a
     server needs". Do not change a server you share yourself.

  2. Point it at a replica you have, streaming from WORKSHOP_DATABASE_URL:
       export WORKSHOP_REPLICA_URL='postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable'`

// howToDelayAReplica is what a test that delays the replica says when the
// server refuses its user ALTER SYSTEM.
const howToDelayAReplica = `lesson 18 delays its replica with ALTER SYSTEM SET recovery_min_apply_delay and
pg_reload_conf(): a superuser may, and the server's DBA can let the user of
WORKSHOP_DATABASE_URL do just that (on the primary; the replica copies it):
  GRANT ALTER SYSTEM ON PARAMETER recovery_min_apply_delay TO <that user>;
  GRANT EXECUTE ON FUNCTION pg_reload_conf() TO <that user>;
(lessons/TRAINER.md, "What a server needs")`

// replicaServer is the binary's replica: what was started, so that
// [StopReplica] undoes exactly that.
type replicaServer struct {
	url   string // its maintenance database
	dir   string // the temporary directory holding its data; "" if none
	slot  string // the replication slot on the primary; "" if none
	cmd   *exec.Cmd
	ctr   testcontainers.Container // on the container path, instead of cmd
	exit  chan struct{}            // closed when cmd has exited
	proxy *rttproxy.Proxy          // nil unless WORKSHOP_RTT is set
	tag   string                   // the application_name of the run's connections to it, and of its stream

	// ownDelay is recovery_min_apply_delay, in ms, as a replica the harness
	// did not start had it before the first SetReplicaDelay ("" until then):
	// stop puts it back, so that a run stopped by Ctrl-C, which skips the
	// tests' cleanups, does not leave someone's replica behind on purpose.
	ownDelay string
}

var replica struct {
	once sync.Once
	mu   sync.Mutex // guards r for StopReplica
	r    *replicaServer
	err  error
}

// ShopCloneWithReplica returns pools on a fresh, writable copy of the shop at
// scale s on the primary and on the same copy as the replica replays it; the
// copy is dropped when the test ends. The replica has replayed the copy's
// creation when it returns.
func ShopCloneWithReplica(tb testing.TB, s shop.Scale) (primary, standby *pgxpool.Pool) {
	tb.Helper()
	h := open(tb)
	r := startReplica(tb, h)
	name := h.copyForTest(tb, s)
	ctx := context.Background()
	if err := waitForReplay(ctx, h.admin, r); err != nil {
		tb.Fatalf("pgtest: replica: the copy %s: %v", name, err)
	}
	primary, err := h.newPool(ctx, name, h.proxy)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(primary.Close)
	standby, err = r.newPool(ctx, name)
	if err != nil {
		tb.Fatalf("pgtest: replica: %v", err)
	}
	tb.Cleanup(standby.Close) // before the copy is dropped, which ends the replica's sessions on it
	return primary, standby
}

// ReplicaURL returns the URL of the replica's maintenance database, direct
// (not through the round-trip proxy), starting the replica if no test has.
// A test that plays the room hands it to children as WORKSHOP_REPLICA_URL.
func ReplicaURL(tb testing.TB) string {
	tb.Helper()
	return startReplica(tb, open(tb)).url
}

// ReplicaLagBytes returns how far, in bytes of WAL, the replica's replay is
// behind the primary's last write.
func ReplicaLagBytes(tb testing.TB) int64 {
	tb.Helper()
	h := open(tb)
	r := startReplica(tb, h)
	behind, err := lagBytes(context.Background(), h.admin, r)
	if err != nil {
		tb.Fatalf("pgtest: replica: %v", err)
	}
	return behind
}

// WaitForReplica waits until the replica has replayed everything the primary
// had written when it was called (the position of its WAL then, against the
// replica's replay position): a test that wrote on the primary then sees its
// write on the replica, however long the replay took on a busy machine. It
// fails tb if the replay stops moving for two minutes, or the replica exits.
func WaitForReplica(tb testing.TB) {
	tb.Helper()
	h := open(tb)
	r := startReplica(tb, h)
	if err := waitForReplay(tb.Context(), h.admin, r); err != nil {
		tb.Fatalf("pgtest: replica: %v", err)
	}
}

// SetReplicaDelay makes the replica apply each commit d after the primary made
// it (recovery_min_apply_delay), until the test ends. Tests that set it must
// not run in parallel: the replica, and so its delay, is shared. On the
// room's replica (WORKSHOP_REPLICA_URL without WORKSHOP_REPLICA_OWN=1) it
// changes nothing: a test asking for the delay the replica has goes on, and
// any other is skipped, saying why.
func SetReplicaDelay(tb testing.TB, d time.Duration) {
	tb.Helper()
	h := open(tb)
	r := startReplica(tb, h)
	if r.shared() {
		has, err := r.applyDelay(context.Background())
		if err != nil {
			tb.Fatalf("pgtest: the room's replica: %v", err)
		}
		if has != d {
			tb.Skipf("pgtest: this test needs the replica to apply commits %v late; the room's replica (%s) applies them %v late, "+
				"and it is everyone's: a trainee changes no setting on it. Run it with a replica of your own (unset %s, or set %s=1 "+
				"for one only you use), or watch the trainer's run (lessons/TRAINER.md, \"One replica for the room\")",
				d, workshopenv.ReplicaURL, has, workshopenv.ReplicaURL, workshopenv.ReplicaOwn)
		}
		return
	}
	tb.Cleanup(func() {
		if err := setApplyDelay(context.Background(), r, 0); err != nil {
			tb.Errorf("pgtest: replica: %v", err)
		}
	})
	if err := setApplyDelay(context.Background(), r, d); err != nil {
		tb.Fatalf("pgtest: replica: %v", err)
	}
}

// StopReplica stops the replica the harness started, if any, drops its
// replication slot and removes its directory. [Main] runs it after the
// tests, and on Ctrl-C, while the harness's connection to the primary is
// open.
func StopReplica() error {
	replica.mu.Lock()
	defer replica.mu.Unlock()
	r := replica.r
	replica.r = nil
	if r == nil {
		return nil
	}
	return r.stop()
}

// startReplica returns the binary's replica, starting it on first use.
func startReplica(tb testing.TB, h *harness) *replicaServer {
	tb.Helper()
	if budget, capped, _ := workshopenv.ConnBudget(); capped && os.Getenv(workshopenv.ReplicaURL) == "" {
		tb.Skipf("pgtest: a replica of this run's own would copy the server on connections of its own and stream from it on one more, beside this trainee's budget (%s=%d): a room shares one replica, %s (lessons/TRAINER.md, \"One replica for the room\")",
			workshopenv.MaxConns, budget, workshopenv.ReplicaURL)
	}
	replica.once.Do(func() {
		replica.err = h.startReplica(context.Background())
	})
	if replica.err != nil {
		tb.Fatalf("pgtest: replica: %v\n\n%s", replica.err, howToGetAReplica)
	}
	replica.mu.Lock()
	defer replica.mu.Unlock()
	if replica.r == nil {
		tb.Fatal("pgtest: replica: stopped already")
	}
	return replica.r
}

// startReplica sets replica.r to what it starts, before starting it, so that
// StopReplica removes whatever part of it exists.
func (h *harness) startReplica(ctx context.Context) error {
	r := &replicaServer{tag: runTag(h.prefix, h.runID)}
	replica.mu.Lock()
	replica.r = r
	replica.mu.Unlock()
	if url := os.Getenv(workshopenv.ReplicaURL); url != "" {
		r.url = url
	} else if c := postgresContainer.Load(); c != nil {
		if err := h.reclaimSlots(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err) // not this run's failure
		}
		r.slot = h.prefix + "run_" + h.runID + "_replica"
		if err := startReplicaContainer(ctx, c, r); err != nil {
			return err
		}
	} else if err := h.makeReplica(ctx, r); err != nil {
		return err
	}
	if h.proxy != nil {
		cfg, err := pgx.ParseConfig(r.url)
		if err != nil {
			return fmt.Errorf("parse the replica's URL: %w", err)
		}
		if r.proxy, err = startProxyTo(cfg, h.proxy.RTT()); err != nil {
			return err
		}
	}
	admin, err := r.newPool(ctx, "")
	if err != nil {
		return err
	}
	defer admin.Close()
	var inRecovery bool
	if err := admin.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return fmt.Errorf("ask the replica whether it is one: %w", err)
	}
	if !inRecovery {
		return fmt.Errorf("%s is not in recovery: it is a primary, not a replica", workshopenv.Redacted(r.url))
	}
	if err := sameCluster(ctx, h.admin, admin); err != nil {
		return fmt.Errorf("%s: %w", workshopenv.Redacted(r.url), err)
	}
	return waitForReplay(ctx, h.admin, r)
}

// sameCluster returns an error if the replica is a copy of another server
// than the primary: it would never replay what the tests write there, and the
// wait for it would end only when the replay had not moved for replicaStall,
// saying no more than that. A physical replica keeps its primary's system
// identifier. Where a user may not read it (pg_control_system), there is
// nothing to compare, and the wait is all that tells.
func sameCluster(ctx context.Context, primary, replica *pgxpool.Pool) error {
	const identifier = `SELECT system_identifier::text FROM pg_control_system()`
	var onPrimary, onReplica string
	if primary.QueryRow(ctx, identifier).Scan(&onPrimary) != nil || replica.QueryRow(ctx, identifier).Scan(&onReplica) != nil {
		return nil
	}
	if onPrimary != onReplica {
		return fmt.Errorf("a replica of another server (system identifier %s), not of the server of %s (%s): "+
			"it never replays what the tests write; point %s at a replica streaming from that server, or unset it",
			onReplica, workshopenv.DatabaseURL, onPrimary, workshopenv.ReplicaURL)
	}
	return nil
}

// makeReplica copies the primary with pg_basebackup into a temporary
// directory and starts it as a hot standby.
func (h *harness) makeReplica(ctx context.Context, r *replicaServer) error {
	primary := h.admin.Config().ConnConfig
	var major string
	if err := h.admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		return fmt.Errorf("read the primary's version: %w", err)
	}
	basebackup, err := serverBinary("pg_basebackup", major)
	if err != nil {
		return err
	}
	postgres, err := serverBinary("postgres", major)
	if err != nil {
		return err
	}
	owner, err := serverUser()
	if err != nil {
		return err
	}
	if err := h.reclaimSlots(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err) // not this run's failure
	}
	removeStaleDirs(os.TempDir(), replicaDirPrefix, processAlive)
	if r.dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", replicaDirPrefix, os.Getpid())); err != nil {
		return fmt.Errorf("make the replica's directory: %w", err)
	}
	if owner != nil {
		if err := os.Chown(r.dir, int(owner.Uid), int(owner.Gid)); err != nil {
			return fmt.Errorf("give %s to the postgres user: %w", r.dir, err)
		}
	}
	data := filepath.Join(r.dir, "data")
	r.slot = h.prefix + "run_" + h.runID + "_replica"
	// The copy may take as long as it needs while it moves; watchCopy
	// stops it once it has not for replicaStall.
	copyCtx, stalled := context.WithCancelCause(ctx)
	defer stalled(nil)
	copyCmd := exec.CommandContext(copyCtx, basebackup,
		"--host", primary.Host, "--port", strconv.Itoa(int(primary.Port)), "--username", primary.User,
		"--pgdata", data, "--write-recovery-conf", "--wal-method", "stream",
		"--create-slot", "--slot", r.slot, "--checkpoint", "fast", "--no-sync",
		"--dbname", "application_name="+r.tag) // kept in primary_conninfo: the replica's stream carries the run's tag
	copyCmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner}
	if primary.Password != "" {
		copyCmd.Env = append(os.Environ(), "PGPASSWORD="+primary.Password)
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchCopy(copyCtx, h.admin, r.tag, stalled)
	}()
	out, err := copyCmd.CombinedOutput()
	cause := context.Cause(copyCtx) // before the watch is stopped: a stall, or nil
	stalled(nil)
	<-watched
	if err != nil {
		if cause != nil {
			err = fmt.Errorf("%w (%w)", cause, err)
		}
		return fmt.Errorf("copy the primary: %s: %w\n%s", copyCmd, err, out)
	}
	port, err := freePort() // the replica may lose it to another process: then it exits, saying so
	if err != nil {
		return fmt.Errorf("find a free port for the replica: %w", err)
	}
	// A Debian cluster keeps its configuration outside the data directory, so
	// the copy has none; settings a hot standby needs at least as high as its
	// primary's are copied.
	var conf strings.Builder
	fmt.Fprintf(&conf, "\n# works-vs-scales replica\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n", port, r.dir)
	fmt.Fprintf(&conf, "hba_file = '%s'\nident_file = '%s'\n", filepath.Join(data, "pg_hba.conf"), filepath.Join(data, "pg_ident.conf"))
	conf.WriteString("hot_standby = on\nssl = off\nshared_buffers = '32MB'\nlogging_collector = off\n")
	for _, setting := range []string{"max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction"} {
		var value string
		if err := h.admin.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&value); err != nil {
			return fmt.Errorf("read the primary's %s: %w", setting, err)
		}
		fmt.Fprintf(&conf, "%s = %s\n", setting, value)
	}
	files := map[string]string{
		"postgresql.conf": conf.String(),
		"pg_hba.conf":     "local all all trust\nhost all all 127.0.0.1/32 trust\n",
		"pg_ident.conf":   "",
	}
	for file, text := range files {
		f, err := os.OpenFile(filepath.Join(data, file), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			_, err = f.WriteString(text)
			err = errors.Join(err, f.Close())
		}
		if err == nil && owner != nil {
			err = os.Chown(filepath.Join(data, file), int(owner.Uid), int(owner.Gid))
		}
		if err != nil {
			return fmt.Errorf("configure the replica: %w", err)
		}
	}
	logFile, err := os.Create(filepath.Join(r.dir, "postgres.log"))
	if err != nil {
		return fmt.Errorf("create the replica's log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	r.cmd = exec.Command(postgres, "-D", data)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	r.cmd.SysProcAttr = childAttr(owner)
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start the replica: %w", err)
	}
	r.exit = make(chan struct{})
	go func() { r.cmd.Wait(); close(r.exit) }()
	r.url = fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", primary.User, port)
	ctx, cancel := context.WithTimeout(ctx, replicaStall) // it answers once it has replayed the copy's WAL
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, r.url)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-r.exit:
			text, _ := os.ReadFile(logFile.Name())
			return fmt.Errorf("the replica exited at start: %v\n%s", r.cmd.ProcessState, text)
		case <-ctx.Done():
			return fmt.Errorf("the replica did not accept connections: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exited is closed once the replica the harness started has exited; for
// one it did not start, never.
func (r *replicaServer) exited() <-chan struct{} {
	return r.exit // a nil channel blocks forever
}

// stop stops the replica immediately (as pg_ctl stop -m immediate does),
// drops its slot and removes its directory.
func (r *replicaServer) stop() error {
	var errs []error
	if r.proxy != nil {
		errs = append(errs, r.proxy.Close())
	}
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-r.exit:
		case <-time.After(10 * time.Second):
			r.cmd.Process.Kill()
			<-r.exit
		}
	}
	if r.ctr != nil {
		errs = append(errs, testcontainers.TerminateContainer(r.ctr))
	}
	if r.cmd == nil && r.ctr == nil && r.ownDelay != "" {
		errs = append(errs, r.setApplyDelayMS(context.Background(), r.ownDelay))
	}
	if r.slot != "" {
		if h := opened.h; h != nil {
			errs = append(errs, dropSlot(context.Background(), h.admin, r.slot))
		}
	}
	if r.dir != "" {
		errs = append(errs, os.RemoveAll(r.dir))
	}
	return errors.Join(errs...)
}

// dropSlot drops a replication slot, waiting for its walsender to notice the
// replica has gone.
func dropSlot(ctx context.Context, admin *pgxpool.Pool, slot string) error {
	const dropInactive = `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`
	deadline := time.Now().Add(10 * time.Second)
	for {
		var active bool
		err := admin.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find replication slot %s: %w", slot, err)
		}
		if !active {
			if _, err := admin.Exec(ctx, dropInactive, slot); err != nil {
				return fmt.Errorf("drop replication slot %s: %w", slot, err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drop replication slot %s: still active after 10s", slot)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaDirPrefix starts the name of a replica's directory, followed by the
// process id of the test binary that made it: a directory whose binary was
// killed (kill -9 skips every cleanup) is removed by the next replica.
const replicaDirPrefix = "wvs-replica-"

// replicaSlotPattern matches the slot of a run's replica, after the prefix.
var replicaSlotPattern = regexp.MustCompile(`^run_([0-9a-f]{8})_replica$`)

// reclaimSlots drops the inactive replication slots of runs under the
// harness's prefix that have ended: a slot nobody reads keeps WAL on the
// primary forever.
func (h *harness) reclaimSlots(ctx context.Context) error {
	conn, err := h.admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("reclaim replication slots: %w", err)
	}
	defer conn.Release()
	_, err = reclaimSlots(ctx, conn.Conn(), h.prefix, h.runID, false)
	return err
}

// reclaimSlots drops, using conn, the inactive replication slots of runs
// under prefix that have ended (never run self's), and says for each slot
// under the prefix what it did; with dryRun it drops nothing.
func reclaimSlots(ctx context.Context, conn *pgx.Conn, prefix, self string, dryRun bool) ([]Verdict, error) {
	const underPrefix = `SELECT slot_name, active FROM pg_replication_slots WHERE left(slot_name, length($1)) = $1 ORDER BY 1`
	rows, err := conn.Query(ctx, underPrefix, prefix)
	if err != nil {
		return nil, fmt.Errorf("list the replication slots named %s…: %w", prefix, err)
	}
	type slot struct {
		Name   string
		Active bool
	}
	slots, err := pgx.CollectRows(rows, pgx.RowToStructByPos[slot])
	if err != nil {
		return nil, fmt.Errorf("list the replication slots named %s…: %w", prefix, err)
	}
	var verdicts []Verdict
	var errs []error
	for _, sl := range slots {
		m := replicaSlotPattern.FindStringSubmatch(strings.TrimPrefix(sl.Name, prefix))
		switch {
		case m == nil:
			verdicts = append(verdicts, Verdict{Name: sl.Name, Reason: "a replication slot the harness does not name"})
		case m[1] == self:
			verdicts = append(verdicts, Verdict{Name: sl.Name, Reason: "this run's own replication slot"})
		case sl.Active:
			verdicts = append(verdicts, Verdict{Name: sl.Name, Reason: "a replica streams from this slot"})
		default:
			v, err := dropSlotOfEndedRun(ctx, conn, prefix, sl.Name, m[1], dryRun)
			verdicts = append(verdicts, v)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return verdicts, errors.Join(errs...)
}

// dropSlotOfEndedRun drops slot, of run id under prefix, if the run has
// ended (see claimEndedRun); it holds the run's lock, in conn's session,
// while it drops.
func dropSlotOfEndedRun(ctx context.Context, conn *pgx.Conn, prefix, slot, id string, dryRun bool) (v Verdict, err error) {
	release, live, err := claimEndedRun(ctx, conn, prefix, id)
	if err != nil || release == nil {
		return Verdict{Name: slot, Reason: live}, err
	}
	defer func() { err = errors.Join(err, release()) }()
	v = Verdict{Name: slot, Dropped: true, Reason: "replication slot left by run " + id + ", which has ended"}
	if dryRun {
		return v, nil
	}
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", slot); err != nil {
		return Verdict{Name: slot}, fmt.Errorf("drop replication slot %s left by run %s: %w", slot, id, err)
	}
	return v, nil
}

// newPool connects to the database name on the replica ("" for its
// maintenance database), through its proxy if it has one.
func (r *replicaServer) newPool(ctx context.Context, name string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(r.url)
	if err != nil {
		return nil, fmt.Errorf("parse the replica's URL: %w", err)
	}
	if name != "" {
		cfg.ConnConfig.Database = name
	}
	if r.proxy != nil {
		cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(r.proxy.Addr().Port)
		cfg.ConnConfig.Fallbacks = nil
	}
	cfg.ConnConfig.Tracer = tracer{}
	cfg.ConnConfig.RuntimeParams["application_name"] = r.tag
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s on the replica: %w", name, err)
	}
	return pool, nil
}

// lagBytes returns how far the replica's replay is behind the primary's last
// write, in bytes of WAL.
func lagBytes(ctx context.Context, primary *pgxpool.Pool, r *replicaServer) (int64, error) {
	var written string
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&written); err != nil {
		return 0, fmt.Errorf("read the primary's WAL position: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, r.connConfig())
	if err != nil {
		return 0, fmt.Errorf("connect to the replica: %w", err)
	}
	defer conn.Close(ctx)
	var behind int64
	const behindQuery = `SELECT greatest(pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()), 0)::int8`
	if err := conn.QueryRow(ctx, behindQuery, written).Scan(&behind); err != nil {
		return 0, fmt.Errorf("read the replica's replay position: %w", err)
	}
	return behind, nil
}

// errStalled is the cause of giving up on a copy or a replay that has made
// no progress for replicaStall.
var errStalled = fmt.Errorf("no progress for %v", replicaStall)

// watchCopy watches the progress of the base backup whose connections carry
// application_name tag (its phase, and the bytes it has streamed), and calls
// stop with errStalled once it has not moved for replicaStall, or returns
// when ctx is done.
func watchCopy(ctx context.Context, primary *pgxpool.Pool, tag string, stop context.CancelCauseFunc) {
	const progress = `SELECT coalesce(string_agg(p.phase || ' ' || p.backup_streamed, ','), '')
		FROM pg_stat_progress_basebackup p JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1`
	last, since := "", time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		var now string
		if err := primary.QueryRow(ctx, progress, tag).Scan(&now); err != nil {
			continue // asked again in a second; a stall still ends it
		}
		if now != last {
			last, since = now, time.Now()
		} else if time.Since(since) > replicaStall {
			stop(fmt.Errorf("pg_basebackup at %q: %w", now, errStalled))
			return
		}
	}
}

// waitForReplay waits until the replica has replayed everything the primary
// had written when it was called: for as long as its replay moves towards
// that position, and no longer than replicaStall once it does not (or at
// once, if the replica the harness started has exited).
func waitForReplay(ctx context.Context, primary *pgxpool.Pool, r *replicaServer) error {
	var written string
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&written); err != nil {
		return fmt.Errorf("read the primary's WAL position: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, r.connConfig())
	if err != nil {
		return fmt.Errorf("connect to the replica: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	last, since := "", time.Now()
	for {
		var replayed bool
		var at string
		const replay = `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false), coalesce(pg_last_wal_replay_lsn()::text, '')`
		if err := conn.QueryRow(ctx, replay, written).Scan(&replayed, &at); err != nil {
			return fmt.Errorf("wait for the replica to replay %s: %w", written, err)
		}
		if replayed {
			return nil
		}
		if at != last {
			last, since = at, time.Now()
		} else if time.Since(since) > replicaStall {
			return fmt.Errorf("the replica did not replay %s: it stayed at %s, %w: is it streaming?", written, at, errStalled)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the replica to replay %s: %w", written, ctx.Err())
		case <-r.exited():
			return fmt.Errorf("wait for the replica to replay %s: the replica exited: %v", written, r.cmd.ProcessState)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// shared reports whether r is the room's replica: named by
// WORKSHOP_REPLICA_URL, not started by the harness, and not said to be the
// trainee's own (WORKSHOP_REPLICA_OWN=1). The harness changes nothing on it.
func (r *replicaServer) shared() bool {
	return r.cmd == nil && r.ctr == nil && os.Getenv(workshopenv.ReplicaOwn) != "1"
}

// RoomReplica reports whether the tests read from the room's replica
// (WORKSHOP_REPLICA_URL without WORKSHOP_REPLICA_OWN=1), on which the
// harness changes no setting: a test that needs another apply delay than
// it has is skipped there (see [SetReplicaDelay]).
func RoomReplica() bool {
	return os.Getenv(workshopenv.ReplicaURL) != "" && os.Getenv(workshopenv.ReplicaOwn) != "1"
}

// applyDelay returns the replica's recovery_min_apply_delay.
func (r *replicaServer) applyDelay(ctx context.Context) (time.Duration, error) {
	conn, err := pgx.ConnectConfig(ctx, r.connConfig())
	if err != nil {
		return 0, fmt.Errorf("connect to the replica: %w", err)
	}
	defer conn.Close(ctx)
	var ms int64
	if err := conn.QueryRow(ctx, "SELECT setting::bigint FROM pg_settings WHERE name = 'recovery_min_apply_delay'").Scan(&ms); err != nil {
		return 0, fmt.Errorf("read recovery_min_apply_delay: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// setApplyDelay sets recovery_min_apply_delay on the replica and waits until
// a new session sees it. The room's replica it refuses: its settings are
// everyone's.
func setApplyDelay(ctx context.Context, r *replicaServer, d time.Duration) error {
	if r.shared() {
		return fmt.Errorf("set recovery_min_apply_delay on the room's replica (%s): the harness changes no setting on it (%s=1 says a replica is your own)", workshopenv.ReplicaURL, workshopenv.ReplicaOwn)
	}
	ms := strconv.FormatInt(d.Milliseconds(), 10)
	if err := r.saveOwnDelay(ctx); err != nil {
		return err
	}
	if err := r.setApplyDelayMS(ctx, ms); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fresh, err := pgx.ConnectConfig(ctx, r.connConfig())
		if err != nil {
			return fmt.Errorf("connect to the replica: %w", err)
		}
		var setting string
		err = fresh.QueryRow(ctx, "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'").Scan(&setting)
		fresh.Close(ctx)
		if err != nil {
			return fmt.Errorf("read recovery_min_apply_delay: %w", err)
		}
		if setting == ms {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("recovery_min_apply_delay is %sms, not %sms, 10s after the reload", setting, ms)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// saveOwnDelay sets r.ownDelay, once, for a replica the harness did not start.
func (r *replicaServer) saveOwnDelay(ctx context.Context) error {
	replica.mu.Lock() // StopReplica, after Ctrl-C, may read ownDelay at any time
	defer replica.mu.Unlock()
	if r.cmd != nil || r.ctr != nil || r.ownDelay != "" {
		return nil
	}
	conn, err := pgx.ConnectConfig(ctx, r.connConfig())
	if err != nil {
		return fmt.Errorf("connect to the replica: %w", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'").Scan(&r.ownDelay); err != nil {
		return fmt.Errorf("read recovery_min_apply_delay: %w", err)
	}
	return nil
}

// setApplyDelayMS sets recovery_min_apply_delay on the replica to ms
// milliseconds and reloads its configuration.
func (r *replicaServer) setApplyDelayMS(ctx context.Context, ms string) error {
	conn, err := pgx.ConnectConfig(ctx, r.connConfig())
	if err != nil {
		return fmt.Errorf("connect to the replica: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := strconv.ParseUint(ms, 10, 31); err != nil {
		return fmt.Errorf("recovery_min_apply_delay %q: not milliseconds", ms)
	}
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET recovery_min_apply_delay = '"+ms+"ms'"); err != nil {
		if isInsufficientPrivilege(err) {
			return fmt.Errorf("set recovery_min_apply_delay to %sms: %w\n\n%s", ms, err, howToDelayAReplica)
		}
		return fmt.Errorf("set recovery_min_apply_delay to %sms: %w", ms, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		if isInsufficientPrivilege(err) {
			return fmt.Errorf("reload the replica's configuration: %w\n\n%s", err, howToDelayAReplica)
		}
		return fmt.Errorf("reload the replica's configuration: %w", err)
	}
	return nil
}

// connConfig is the configuration of a direct connection to the replica's
// maintenance database.
func (r *replicaServer) connConfig() *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(r.url)
	if err != nil {
		panic(fmt.Sprintf("pgtest: the replica's URL %q was parsed once already: %v", r.url, err))
	}
	cfg.RuntimeParams["application_name"] = r.tag
	return cfg
}

// serverBinary finds a PostgreSQL server program of major version major: on
// PATH if it is the same version, else where Debian and Red Hat install it.
func serverBinary(name, major string) (string, error) {
	candidates := []string{
		filepath.Join("/usr/lib/postgresql", major, "bin", name),
		filepath.Join("/usr/pgsql-"+major, "bin", name),
	}
	if path, err := exec.LookPath(name); err == nil {
		candidates = append(candidates, path)
	}
	for _, path := range candidates {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no %s of PostgreSQL %s: looked in %s", name, major, strings.Join(candidates, ", "))
}

// serverUser returns the credential the server programs (postgres,
// pg_basebackup, PgBouncer) run as: the postgres OS user when this process is
// root, which they refuse; nil otherwise.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, which PostgreSQL and PgBouncer refuse: no postgres user to run them as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of postgres %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of postgres %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
