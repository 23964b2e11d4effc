// Package pgtest gives the workshop's tests and benchmarks a real PostgreSQL
// holding the generated shop, and counts what they ask of it.
//
// The server is found once per test binary (see [locate]): every lesson has a
// test binary of its own (bench/<lesson>), and go test ./... runs several at
// once, so they share one server, and without a URL one container for the
// whole go test run. Each scale of the shop is seeded once per server into a
// template database that later runs reuse, named by a hash of the code that
// builds it; an advisory lock lets one binary seed it while the others wait,
// then copy it. Readers share one
// read-only copy per scale, writers get a copy each, dropped when their test
// ends. Every database the harness makes starts with WORKSHOP_DB_PREFIX
// (default wvs_) and carries the id of the run that made it; it touches no
// other, and never one a live run uses (see [DropDatabases]).
//
// A package that uses it runs [Main] from its TestMain, so the copies are
// dropped when the binary ends, or is interrupted by SIGINT or SIGTERM. What a
// killed run leaves, the next run on the server drops. The run's container is
// removed by testcontainers' reaper once the last binary of the run is gone.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"

	"works-vs-scales/internal/rttproxy"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// Seed is the generator seed of every shop the harness builds.
const Seed uint64 = 1

// connectTimeout bounds the first connection to the server: a server that
// accepts and never answers fails the run in seconds, not minutes.
const connectTimeout = 5 * time.Second

// TemplateName is the name of the template database holding the shop at scale
// s: it changes with the shop package's source (its generator, loader, schema
// and indexes), GeneratorVersion and the seed, so a template is reused only
// while it would be seeded the same way.
func TemplateName(s shop.Scale) string { return templateName(prefixFromEnv(), s) }

// Shop returns a pool on the shop at scale s, shared by every caller in this
// test binary. The database is read-only: a test that writes uses [ShopClone].
func Shop(tb testing.TB, s shop.Scale) *pgxpool.Pool {
	tb.Helper()
	h := open(tb)
	pool, err := h.reader(context.Background(), s)
	if err != nil {
		tb.Fatalf("pgtest: shop at scale %v: %v", s, err)
	}
	return pool
}

// ShopClone returns a pool on a fresh, writable copy of the shop at scale s,
// dropped when the test ends.
func ShopClone(tb testing.TB, s shop.Scale) *pgxpool.Pool {
	tb.Helper()
	h := open(tb)
	name := h.copyForTest(tb, s)
	pool, err := h.newPool(context.Background(), name, h.proxy)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before the drop: cleanups run last-in, first-out
	return pool
}

// copyForTest makes a copy of the shop at scale s, dropped when the test
// ends, and returns its name.
func (h *harness) copyForTest(tb testing.TB, s shop.Scale) string {
	tb.Helper()
	name := runName(h.prefix, h.runID, fmt.Sprintf("clone_%d", h.clones.Add(1)))
	tb.Cleanup(func() { // registered first, so that it runs after every other cleanup
		if err := h.drop(context.Background(), name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	if err := h.copyOf(context.Background(), s, name); err != nil {
		tb.Fatalf("pgtest: copy of the shop at scale %v: %v", s, err)
	}
	return name
}

// Derived is a database built once per server from a copy of the shop at
// Scale, by Build, and kept as a template beside the shop's: a benchmark
// whose setup takes minutes (lesson 19's decade of orders) pays it once,
// then copies it. It is dropped with the shop's templates, by a change to
// the shop's source or by go run ./cmd/dropdbs.
type Derived struct {
	Scale shop.Scale
	// Name says what Build adds and which version of it: a lower-case
	// letter, then letters and digits, at most 19 in all (e.g. l19v1naive1m).
	// Change it when Build changes: a template of the same name is reused
	// as it is.
	Name string
	// Build adds to the copy of the shop, on a pool of its own.
	Build func(context.Context, *pgxpool.Pool) error
}

// DerivedClone returns a pool on a fresh, writable copy of d's template,
// built first if no earlier run did, dropped when the test ends.
func DerivedClone(tb testing.TB, d Derived) *pgxpool.Pool {
	tb.Helper()
	h := open(tb)
	name := runName(h.prefix, h.runID, fmt.Sprintf("clone_%d", h.clones.Add(1)))
	tb.Cleanup(func() { // registered first, so that it runs after every other cleanup
		if err := h.drop(context.Background(), name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	ctx := context.Background()
	template, err := h.derivedTemplate(ctx, d)
	if err == nil {
		err = h.copyTemplate(ctx, template, name)
	}
	if err != nil {
		tb.Fatalf("pgtest: copy of %s: %v", d.Name, err)
	}
	pool, err := h.newPool(ctx, name, h.proxy)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before the drop: cleanups run last-in, first-out
	return pool
}

// ShopCloneWithFaults is [ShopClone] reached through a proxy of its own, which
// the test drives to inject faults: latency, a hang, a reset, the database
// down and back up. The proxy adds WORKSHOP_RTT, if set, until told otherwise;
// it is closed when the test ends.
func ShopCloneWithFaults(tb testing.TB, s shop.Scale) (*pgxpool.Pool, *rttproxy.Proxy) {
	tb.Helper()
	h := open(tb)
	name := h.copyForTest(tb, s)
	var rtt time.Duration
	if h.proxy != nil {
		rtt = h.proxy.RTT()
	}
	proxy, err := startProxyTo(h.admin.Config().ConnConfig, rtt)
	if err != nil {
		tb.Fatalf("pgtest: fault proxy: %v", err)
	}
	tb.Cleanup(func() {
		if err := proxy.Close(); err != nil {
			tb.Errorf("pgtest: close the fault proxy: %v", err)
		}
	})
	pool, err := h.newPool(context.Background(), name, proxy)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close) // before the proxy closes and the copy is dropped
	return pool, proxy
}

// IsQueryCanceled reports whether err is PostgreSQL cancelling a statement
// (SQLSTATE 57014), as it does when the context of a query ends.
func IsQueryCanceled(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57014"
}

// ServerVersion returns the PostgreSQL server's version, for a results header.
func ServerVersion(tb testing.TB) string {
	tb.Helper()
	var version string
	if err := open(tb).admin.QueryRow(context.Background(), "SELECT 'PostgreSQL ' || current_setting('server_version')").Scan(&version); err != nil {
		tb.Fatalf("pgtest: server version: %v", err)
	}
	return version
}

// ServerURL returns the URL of the server the harness uses, for a test that
// starts processes of its own against the same server.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	return open(tb).server.url
}

// Main prints where the run happens as benchmark configuration lines, runs the
// tests and benchmarks of m, then runs cleanups (other harnesses' Close),
// stops the replica if a test started one ([StopReplica]), drops this
// binary's databases, and exits.
//
// On SIGINT (Ctrl-C) or SIGTERM it drops this binary's databases and runs
// cleanups at once, then exits with status 128+signal. A -timeout panic or a
// SIGKILL cannot be caught: the next run on the server drops what this one
// left, once its run lock and sessions show it gone. If the run stopped
// because it could not prove itself live (see runLock), it exits non-zero,
// saying why.
func Main(m *testing.M, cleanups ...func() error) {
	cleanups = append(slices.Clip(cleanups), StopReplica)
	printRunConfig(os.Stdout)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		os.Exit(interrupted(sig, cleanups))
	}()
	code := m.Run()
	signal.Stop(signals)
	if h := opened.h; h != nil {
		if err := h.lock.err(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
		cleanups = append(cleanups, func() error { return h.close(context.Background()) })
	}
	for _, cleanup := range cleanups {
		if err := cleanup(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: cleaning up: %v\n", err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// interrupted drops the run's databases and runs cleanups, within a deadline,
// after sig; it returns the exit status.
func interrupted(sig os.Signal, cleanups []func() error) int {
	fmt.Fprintf(os.Stderr, "pgtest: %v: dropping this run's databases\n", sig)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if h := current.Load(); h != nil {
			if err := h.dropRun(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			}
		}
		for _, cleanup := range cleanups {
			if err := cleanup(); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: cleaning up: %v\n", err)
			}
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "pgtest: cleaning up took too long; the next run drops what is left")
	}
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// printRunConfig prints, as benchmark configuration lines, what every result
// depends on whether or not it uses the database: Go, the CPUs it may use, the
// day, and the commit of the code measured, "-dirty" when files other than
// lessons/results (where the results being written go) have changes.
func printRunConfig(w io.Writer) {
	fmt.Fprintf(w, "go: %s\ngomaxprocs: %d\ndate: %s\n", runtime.Version(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.DateOnly))
	commit, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return
	}
	changes, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)lessons/results").Output()
	dirty := ""
	if err != nil || len(changes) > 0 {
		dirty = "-dirty"
	}
	fmt.Fprintf(w, "commit: %s%s\n", strings.TrimSpace(string(commit)), dirty)
}

// opened is the harness of this test binary, opened on first use.
var opened struct {
	once     sync.Once
	h        *harness
	err      error
	reported atomic.Bool
}

// current is the harness once opened, for the signal handler.
var current atomic.Pointer[harness]

func open(tb testing.TB) *harness {
	tb.Helper()
	opened.once.Do(func() {
		opened.h, opened.err = start(context.Background(), os.Getenv, startContainer)
		current.Store(opened.h)
	})
	if opened.err != nil {
		if opened.reported.Swap(true) {
			tb.Fatal("pgtest: no PostgreSQL (the first failure says why and how to get one)")
		}
		tb.Fatalf("pgtest: %v", opened.err)
	}
	if err := opened.h.lock.err(); err != nil {
		tb.Fatal(err)
	}
	return opened.h
}

// harness is a PostgreSQL server and the databases this binary made on it.
type harness struct {
	server server
	prefix string          // starts every database name
	runID  string          // in every copy's name; its advisory lock says the run is live
	admin  *pgxpool.Pool   // the maintenance database, direct
	proxy  *rttproxy.Proxy // nil unless WORKSHOP_RTT is set
	clones atomic.Int64
	roles  atomic.Int64 // login roles made by LoginRole

	// lock holds the run's advisory lock, and a shared lock on each template
	// the run copies, until the binary ends; own is what the run made, which
	// it checks is still there when it has to take its lock again.
	lock *runLock
	own  owned

	mu      sync.Mutex
	readers map[shop.Scale]*readerDB

	// creating is held, shared, by each copy being made, and taken by
	// dropRun before it lists the run's databases, so that a copy under way
	// when the binary is interrupted (not yet in pg_database) is dropped
	// too; stopped, under it, refuses the copies asked after.
	creating sync.RWMutex
	stopped  bool

	// turn is the run's own part of the room's turn for a large check
	// (TakeLargeTurn): one of its tests at a time takes the room's lock.
	turn struct {
		taken  chan struct{} // holds one value while a test of the run has the turn
		mu     sync.Mutex
		holder string // the name of that test
	}
}

type readerDB struct {
	once sync.Once
	name string
	pool *pgxpool.Pool
	err  error
}

func start(ctx context.Context, getenv func(string) string, startContainer startFunc) (*harness, error) {
	rtt, err := workshopenv.ParseRTT(getenv(workshopenv.RTT))
	if err != nil {
		return nil, err
	}
	prefix, err := parsePrefix(getenv(workshopenv.DBPrefix))
	if err != nil {
		return nil, err
	}
	srv, err := locate(ctx, getenv, startContainer, testcontainers.SessionID())
	if err != nil {
		return nil, err
	}
	h := &harness{server: srv, prefix: prefix, readers: make(map[shop.Scale]*readerDB)}
	h.turn.taken = make(chan struct{}, 1)
	if err := h.connect(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("connect to %s from %s: %w\n\n%s", workshopenv.Redacted(srv.url), srv.origin, err, howToGetOne), h.close(ctx))
	}
	if h.admin, err = h.newPool(ctx, "", nil); err != nil { // tagged with the run's id, known now
		return nil, errors.Join(err, h.close(ctx))
	}
	if err := h.reclaim(ctx); err != nil {
		// Not this run's failure: what is left, the next run tries again.
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
	if rtt > 0 {
		if h.proxy, err = startProxyTo(h.admin.Config().ConnConfig, rtt); err != nil {
			return nil, errors.Join(err, h.close(ctx))
		}
	}
	if err := h.describe(ctx, os.Stdout); err != nil {
		return nil, errors.Join(err, h.close(ctx))
	}
	return h, nil
}

// connect opens the run's own connection, within connectTimeout, takes the
// run's lock on it and starts watching it (see runLock).
func (h *harness) connect(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(h.server.url) // the pools' settings (pool_max_conns) are no server's
	if err != nil {
		return fmt.Errorf("parse %s: %w", workshopenv.DatabaseURL, err)
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	h.lock, err = takeRunLock(ctx, cfg.ConnConfig, h.prefix, h.own.check)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %v: %w", connectTimeout, err)
		}
		return err
	}
	h.runID = h.lock.id
	return nil
}

// reclaim drops, under the run's prefix, what runs that have ended left
// behind (a -timeout panic or a SIGKILL gives no chance to clean up) and the
// templates a change to the shop's source superseded, unless a live run uses
// them. It says what it dropped on stderr, seen with go test -v; nothing is
// left that needs the user to act, except names from an older harness.
func (h *harness) reclaim(ctx context.Context) error {
	conn, err := h.admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("reclaim leftovers: %w", err)
	}
	defer conn.Release()
	verdicts, err := reclaim(ctx, conn.Conn(), h.prefix, h.runID, DropOptions{})
	var legacies []string
	for _, v := range verdicts {
		if v.Dropped {
			fmt.Fprintf(os.Stderr, "pgtest: dropped %s: %s\n", v.Name, v.Reason)
		} else if parseName(h.prefix, v.Name).kind == legacy {
			legacies = append(legacies, v.Name)
		}
	}
	if len(legacies) > 0 {
		fmt.Fprintf(os.Stderr, "pgtest: %d database(s) named by an older harness (%s); once no session is on them: go run ./cmd/dropdbs -legacy\n",
			len(legacies), strings.Join(legacies, ", "))
	}
	if err != nil {
		return fmt.Errorf("reclaim leftovers: %w", err)
	}
	return nil
}

// useTemplate takes, once per run, a shared lock on template name on the
// run's own connection: nobody drops a template while a live run may copy it.
func (h *harness) useTemplate(ctx context.Context, name string) error {
	return h.lock.shareTemplate(ctx, name)
}

// dropRun drops every database and role of this run, on a connection of its own: the
// pools may be busy with the tests being interrupted. It waits for the copies
// under way, and the run makes none after it.
func (h *harness) dropRun(ctx context.Context) error {
	// The copies under way finish first, and none starts after: the list
	// below holds every database the run will have made.
	h.creating.Lock()
	defer h.creating.Unlock()
	h.stopped = true
	conn, err := pgx.ConnectConfig(ctx, h.admin.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("drop run %s: %w", h.runID, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	const runDatabases = `SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1`
	rows, err := conn.Query(ctx, runDatabases, runName(h.prefix, h.runID, ""))
	if err != nil {
		return fmt.Errorf("list run %s's databases: %w", h.runID, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list run %s's databases: %w", h.runID, err)
	}
	var errs []error
	for _, name := range names {
		if err := dropForce(ctx, conn, name); err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", name, err))
		}
	}
	errs = append(errs, h.dropRunRoles(ctx, conn)) // after the databases holding their privileges
	return errors.Join(errs...)
}

// startProxyTo starts a latency proxy in front of the server cfg connects to.
func startProxyTo(cfg *pgx.ConnConfig, rtt time.Duration) (*rttproxy.Proxy, error) {
	network, address := "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") {
		network, address = "unix", fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	return rttproxy.Start(network, address, rtt)
}

// newPool connects to the database name ("" for the maintenance database),
// through proxy unless it is nil.
func (h *harness) newPool(ctx context.Context, name string, proxy *rttproxy.Proxy) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(h.server.url)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", workshopenv.DatabaseURL, err)
	}
	if name != "" {
		cfg.ConnConfig.Database = name
	}
	if proxy != nil {
		cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(proxy.Addr().Port)
		cfg.ConnConfig.Fallbacks = nil
	}
	cfg.ConnConfig.Tracer = tracer{}
	cfg.ConnConfig.RuntimeParams["application_name"] = runTag(h.prefix, h.runID)
	budget, capped, err := workshopenv.ConnBudget()
	if err != nil {
		return nil, err
	}
	switch { // a room's per-trainee budget (WORKSHOP_MAX_CONNS), the harness's part included
	case capped && name == "": // the harness's own, on the maintenance database: its part
		cfg.MaxConns = min(cfg.MaxConns, workshopenv.HarnessConns-2)
	case capped:
		cfg.MaxConns = min(cfg.MaxConns, int32(workshopenv.DatabaseConns(budget)))
	}
	cfg.MinConns = min(cfg.MinConns, cfg.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s: %w", name, err)
	}
	return pool, nil
}

// describe prints, as benchmark configuration lines (which benchstat keeps),
// the server settings that change results and the round-trip time a query
// really sees.
func (h *harness) describe(ctx context.Context, w *os.File) error {
	const settingsQuery = `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('shared_buffers'), current_setting('synchronous_commit')`
	var version, fsync, sharedBuffers, syncCommit string
	if err := h.admin.QueryRow(ctx, settingsQuery).Scan(&version, &fsync, &sharedBuffers, &syncCommit); err != nil {
		return fmt.Errorf("read server settings: %w", err)
	}
	rtt, err := h.measureRTT(ctx)
	if err != nil {
		return err
	}
	setting := "none"
	if h.proxy != nil {
		setting = h.proxy.RTT().String()
	}
	fmt.Fprintf(w, "postgres: %s\npostgres-from: %s\npostgres-fsync: %s\npostgres-shared_buffers: %s\npostgres-synchronous_commit: %s\n",
		version, h.server.origin, fsync, sharedBuffers, syncCommit)
	fmt.Fprintf(w, "rtt-added: %s\nrtt-measured: %.3fms\n", setting, float64(rtt.Microseconds())/1000)
	return nil
}

// measureRTT returns the median time of a trivial query through the pools the
// tests get: the round trip they pay, whatever WORKSHOP_RTT asked for.
func (h *harness) measureRTT(ctx context.Context) (time.Duration, error) {
	pool, err := h.newPool(ctx, "", h.proxy)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("measure round trip: %w", err)
	}
	defer conn.Release()
	const trips = 101
	times := make([]time.Duration, trips)
	for i := range times {
		started := time.Now()
		if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
			return 0, fmt.Errorf("measure round trip: %w", err)
		}
		times[i] = time.Since(started)
	}
	slices.Sort(times)
	return times[trips/2], nil
}

// template returns the name of the template holding the shop at scale s,
// seeding it first if no earlier run did. An advisory lock keeps two binaries
// from seeding the same template at once.
func (h *harness) template(ctx context.Context, s shop.Scale) (string, error) {
	what := fmt.Sprintf("%d users, %d orders", s.Users(), s.Orders())
	return h.buildTemplate(ctx, templateName(h.prefix, s), what, "", func(ctx context.Context, building string) error {
		return h.seed(ctx, building, s)
	})
}

// derivedTemplate returns the name of d's template, building it first, on a
// copy of the shop's template, if no earlier run did.
func (h *harness) derivedTemplate(ctx context.Context, d Derived) (string, error) {
	if !derivedNamePattern.MatchString(d.Name) {
		return "", fmt.Errorf("derived template %s: want a lower-case letter, then letters and digits, at most 19 in all", shop.Quote(d.Name))
	}
	base, err := h.template(ctx, d.Scale)
	if err != nil {
		return "", err
	}
	return h.buildTemplate(ctx, derivedName(h.prefix, d.Name), d.Name+" on the shop at "+d.Scale.String(), base, func(ctx context.Context, building string) error {
		pool, err := h.newPool(ctx, building, nil)
		if err != nil {
			return err
		}
		defer pool.Close() // before the rename, which no session may see
		if err := d.Build(ctx, pool); err != nil {
			return fmt.Errorf("build %s: %w", building, err)
		}
		return nil
	})
}

// buildTemplate returns name, the template fill makes in an empty database
// (or a copy of the template from, unless it is empty), building it unless
// it exists; what says what it holds.
func (h *harness) buildTemplate(ctx context.Context, name, what, from string, fill func(ctx context.Context, building string) error) (string, error) {
	if err := h.useTemplate(ctx, name); err != nil {
		return "", err
	}
	conn, err := h.admin.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	defer conn.Release()
	lock := lockKey(name)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		return "", fmt.Errorf("lock template %s: %w", name, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock)

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for template %s: %w", name, err)
	}
	if exists {
		return name, nil
	}

	// Seed under a temporary name and rename when done, so that an interrupted
	// seeding never leaves a template that looks complete.
	building := name + "_building"
	started := time.Now()
	fmt.Fprintf(os.Stderr, "pgtest: seeding %s (%s; once per server)...\n", name, what)
	if err := h.drop(ctx, building); err != nil {
		return "", err
	}
	create := "CREATE DATABASE " + ident(building)
	if from != "" {
		create += " TEMPLATE " + ident(from) + " STRATEGY FILE_COPY"
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		return "", fmt.Errorf("create %s: %w", building, err)
	}
	if err := fill(ctx, building); err != nil {
		return "", errors.Join(err, h.drop(ctx, building))
	}
	for _, sql := range []string{
		"ALTER DATABASE " + ident(building) + " RENAME TO " + ident(name),
		"ALTER DATABASE " + ident(name) + " WITH ALLOW_CONNECTIONS false IS_TEMPLATE true",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return "", fmt.Errorf("finish template %s: %w", name, err)
		}
	}
	fmt.Fprintf(os.Stderr, "pgtest: seeded %s in %.1fs\n", name, time.Since(started).Seconds())
	return name, nil
}

func (h *harness) seed(ctx context.Context, name string, s shop.Scale) error {
	cfg := h.admin.Config().ConnConfig.Copy()
	cfg.Database = name
	cfg.Tracer = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) }
	if _, capped, _ := workshopenv.ConnBudget(); capped {
		connect = nil // a room's budget: one connection loads every table in turn, slower, once per server
	}
	if err := shop.LoadConcurrently(ctx, conn, connect, s, Seed); err != nil {
		return fmt.Errorf("seed %s: %w", name, err)
	}
	return nil
}

// copyOf creates the database name as a copy of the shop's template at scale s.
func (h *harness) copyOf(ctx context.Context, s shop.Scale, name string) error {
	template, err := h.template(ctx, s)
	if err != nil {
		return err
	}
	return h.copyTemplate(ctx, template, name)
}

// copyTemplate creates the database name as a copy of template.
func (h *harness) copyTemplate(ctx context.Context, template, name string) error {
	h.creating.RLock()
	defer h.creating.RUnlock()
	if h.stopped {
		return fmt.Errorf("copy %s to %s: run %s was interrupted", template, name, h.runID)
	}
	sql := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", ident(name), ident(template))
	if _, err := h.admin.Exec(ctx, sql); err != nil {
		return fmt.Errorf("copy %s to %s: %w", template, name, err)
	}
	h.own.addDatabase(name)
	return nil
}

// reader returns the pool on this binary's read-only copy of the shop at scale
// s, making it on first use.
func (h *harness) reader(ctx context.Context, s shop.Scale) (*pgxpool.Pool, error) {
	h.mu.Lock()
	r, ok := h.readers[s]
	if !ok {
		r = &readerDB{name: runName(h.prefix, h.runID, "read_"+s.String())}
		h.readers[s] = r
	}
	h.mu.Unlock()
	r.once.Do(func() {
		if r.err = h.copyOf(ctx, s, r.name); r.err != nil {
			return
		}
		sql := "ALTER DATABASE " + ident(r.name) + " SET default_transaction_read_only = on"
		if _, r.err = h.admin.Exec(ctx, sql); r.err != nil {
			r.err = fmt.Errorf("make %s read-only: %w", r.name, r.err)
			return
		}
		r.pool, r.err = h.newPool(ctx, r.name, h.proxy)
	})
	return r.pool, r.err
}

// drop drops a database the harness made, closing any session still on it.
func (h *harness) drop(ctx context.Context, name string) error {
	if p := parseName(h.prefix, name); p.kind == unknown || p.kind == legacy {
		return fmt.Errorf("refusing to drop %s: the harness made no such database", name)
	}
	h.own.removeDatabase(name) // first: a drop under way is no loss
	if err := dropForce(ctx, h.admin, name); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	return nil
}

// close drops the read-only copies and stops the proxy and the container.
func (h *harness) close(ctx context.Context) error {
	var errs []error
	for _, r := range h.readers {
		if r.pool != nil {
			r.pool.Close()
		}
		if r.err == nil {
			errs = append(errs, h.drop(ctx, r.name))
		}
	}
	if h.proxy != nil {
		errs = append(errs, h.proxy.Close())
	}
	if h.admin != nil {
		h.admin.Close()
	}
	if h.lock != nil { // last: it says the run is live until its databases are gone
		errs = append(errs, h.lock.close(ctx))
	}
	if h.server.stop != nil {
		errs = append(errs, h.server.stop())
	}
	return errors.Join(errs...)
}

func lockKey(name string) int64 {
	hash := fnv.New64a()
	hash.Write([]byte(name))
	return int64(hash.Sum64())
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
