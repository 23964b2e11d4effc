package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"works-vs-scales/internal/syncbuf"
	"works-vs-scales/internal/workshopenv"

	"github.com/jackc/pgx/v5"
)

// howToGetPgBouncer is what a test that needs PgBouncer says when there is none.
const howToGetPgBouncer = "apt-get install pgbouncer or set " + workshopenv.PgBouncerURL

// PgBouncerConfig is what a test asks of the PgBouncer it starts.
type PgBouncerConfig struct {
	// PoolSize is default_pool_size: the server connections PgBouncer opens
	// per database and user, at most. Zero means 5.
	PoolSize int
	// MaxClientConn is max_client_conn: the client connections it accepts.
	// Zero means 1000.
	MaxClientConn int
}

// PgBouncer starts a PgBouncer 1.18 in transaction-pooling mode in front of
// the database target connects to, and returns a copy of target that
// connects through it. PgBouncer logs in to the server as target's user, with
// target's password; it accepts that user without a password (auth_type
// trust) on a free loopback port, and the user may open its admin console
// (database "pgbouncer").
//
// On the container path (the harness started PostgreSQL as a container) it
// runs as a container of WORKSHOP_PGBOUNCER_IMAGE (or DefaultPgBouncerImage)
// that reaches the server over Docker's network, removed when the test ends.
// Either way PgBouncer connects to the server the way target does (through
// the harness's latency proxy when WORKSHOP_RTT is set), and the client
// connects to PgBouncer with no latency added.
// Otherwise it runs as a child process, as the postgres OS user when the test runs as
// root (PgBouncer refuses root), from a temporary directory holding its
// generated pgbouncer.ini and userlist.txt; it is stopped and the directory
// removed when the test ends. With WORKSHOP_PGBOUNCER_URL set it starts
// nothing and returns that PgBouncer's address instead, and cfg is the
// trainer's to match; WORKSHOP_RTT is then not added behind it. Without either, the test fails, saying how to get one.
func PgBouncer(tb testing.TB, target *pgx.ConnConfig, cfg PgBouncerConfig) *pgx.ConnConfig {
	tb.Helper()
	if target == nil {
		tb.Fatalf("pgtest: PgBouncer in front of no database: pass the config of the one to pool")
	}
	if url := os.Getenv(workshopenv.PgBouncerURL); url != "" {
		through, err := pgx.ParseConfig(url)
		if err != nil {
			tb.Fatalf("pgtest: %s: %v", workshopenv.PgBouncerURL, err)
		}
		if rtt := os.Getenv(workshopenv.RTT); rtt != "" {
			tb.Logf("pgtest: the PgBouncer of %s reaches the server its own way: %s=%s is not added behind it", workshopenv.PgBouncerURL, workshopenv.RTT, rtt)
		}
		through.Database, through.User, through.Password = target.Database, target.User, target.Password
		through.Tracer = target.Tracer
		if tag, ok := target.RuntimeParams["application_name"]; ok { // the run's, which PgBouncer passes on
			through.RuntimeParams["application_name"] = tag
		}
		return through
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = 5
	}
	if cfg.MaxClientConn == 0 {
		cfg.MaxClientConn = 1000
	}
	if cfg.PoolSize < 0 || cfg.MaxClientConn < 0 {
		tb.Fatalf("pgtest: PgBouncer with pool size %d and %d client connections: want positive numbers", cfg.PoolSize, cfg.MaxClientConn)
	}
	if c := postgresContainer.Load(); c != nil { // the container path: PgBouncer is a container too
		var stop func() error
		tb.Cleanup(func() { // registered before anything starts: stops what did
			if stop != nil {
				if err := stop(); err != nil {
					tb.Errorf("pgtest: remove the PgBouncer container: %v", err)
				}
			}
		})
		through, remove, err := startPgBouncerContainer(context.Background(), c, target, cfg)
		stop = remove
		if err != nil {
			tb.Fatalf("pgtest: PgBouncer: %v", err)
		}
		through.Tracer = target.Tracer
		return through
	}
	binary, err := findPgBouncer(exec.LookPath)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	b := &bouncer{}
	tb.Cleanup(func() { // registered before anything starts: stops what did
		if err := b.stop(); err != nil {
			tb.Errorf("pgtest: stop PgBouncer: %v", err)
		}
	})
	through, err := b.start(binary, target, cfg)
	if err != nil {
		tb.Fatalf("pgtest: start PgBouncer (%s): %v", binary, err)
	}
	return through
}

// findPgBouncer returns the path of the pgbouncer binary: on PATH, or where
// Debian's package puts it (/usr/sbin, often not on a user's PATH), or an
// error saying how to get one.
func findPgBouncer(lookPath func(string) (string, error)) (string, error) {
	for _, name := range []string{"pgbouncer", "/usr/sbin/pgbouncer"} {
		if binary, err := lookPath(name); err == nil {
			return binary, nil
		}
	}
	return "", fmt.Errorf("no pgbouncer on PATH or in /usr/sbin: %s", howToGetPgBouncer)
}

// bouncer is a PgBouncer child process and its directory.
type bouncer struct {
	mu     sync.Mutex
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}  // closed when cmd has exited
	output syncbuf.Buffer // what it logged
}

// start writes the configuration and starts PgBouncer, and returns once it
// accepts connections.
func (b *bouncer) start(binary string, target *pgx.ConnConfig, cfg PgBouncerConfig) (*pgx.ConnConfig, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	removeStaleDirs(os.TempDir(), dirPrefix, processAlive)
	var err error
	if b.dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid())); err != nil {
		return nil, err
	}
	credential, err := serverUser()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := b.writeConfig(target, cfg, port, credential); err != nil {
		return nil, err
	}
	b.cmd = exec.Command(binary, filepath.Join(b.dir, "pgbouncer.ini"))
	b.cmd.Dir = b.dir
	b.cmd.Stdout, b.cmd.Stderr = &b.output, &b.output
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential, Setpgid: true}
	dieWithParent(b.cmd.SysProcAttr) // its cleanup does not run if the test binary is killed
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	b.exited = make(chan struct{})
	go func() { b.cmd.Wait(); close(b.exited) }()

	address := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-b.exited:
			return nil, fmt.Errorf("it exited at once: %s", strings.TrimSpace(b.output.String()))
		case <-time.After(10 * time.Millisecond): // polling a port it has yet to open
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no answer on %s within 10s: %s", address, strings.TrimSpace(b.output.String()))
		}
	}
	through := target.Copy()
	through.Host, through.Port = "127.0.0.1", uint16(port)
	through.Fallbacks = nil
	through.TLSConfig = nil
	return through, nil
}

// writeConfig writes pgbouncer.ini and userlist.txt into b.dir, readable by
// the user PgBouncer runs as.
func (b *bouncer) writeConfig(target *pgx.ConnConfig, cfg PgBouncerConfig, port int, credential *syscall.Credential) error {
	server := fmt.Sprintf("host=%s port=%d dbname=%s", target.Host, target.Port, target.Database)
	ini := pgBouncerINI(target, cfg, server, "127.0.0.1", port, filepath.Join(b.dir, "userlist.txt"))
	for name, text := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": pgBouncerUserlist(target)} {
		if err := os.WriteFile(filepath.Join(b.dir, name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	if credential == nil {
		return nil
	}
	for _, name := range []string{"", "pgbouncer.ini", "userlist.txt"} {
		if err := os.Chown(filepath.Join(b.dir, name), int(credential.Uid), int(credential.Gid)); err != nil {
			return err
		}
	}
	return nil
}

// pgBouncerINI is the pgbouncer.ini of a PgBouncer pooling target's database
// on server (a libpq connection string) in transaction mode, listening on
// listenAddr:port, its users in authFile.
func pgBouncerINI(target *pgx.ConnConfig, cfg PgBouncerConfig, server, listenAddr string, port int, authFile string) string {
	return fmt.Sprintf(`[databases]
%s = %s

[pgbouncer]
listen_addr = %s
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = %d
max_db_connections = 0
server_tls_sslmode = disable
ignore_startup_parameters = extra_float_digits
logfile =
pidfile =
`, target.Database, server, listenAddr, port, authFile, target.User, cfg.PoolSize, cfg.MaxClientConn)
}

// pgBouncerUserlist is the userlist.txt with target's user and password,
// which PgBouncer logs in to the server with.
func pgBouncerUserlist(target *pgx.ConnConfig) string {
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return quote(target.User) + " " + quote(target.Password) + "\n"
}

// stop stops PgBouncer, if it started, and removes its directory.
func (b *bouncer) stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	if b.exited != nil {
		b.cmd.Process.Signal(syscall.SIGTERM) // immediate shutdown
		select {
		case <-b.exited:
		case <-time.After(5 * time.Second):
			b.cmd.Process.Kill()
			<-b.exited
			errs = append(errs, errors.New("PgBouncer ignored SIGTERM for 5s: killed"))
		}
	}
	if b.dir != "" {
		errs = append(errs, os.RemoveAll(b.dir))
	}
	return errors.Join(errs...)
}

// dirPrefix starts the name of each PgBouncer's directory, followed by the
// process id of the test binary that made it.
const dirPrefix = "workshop-pgbouncer-"

// removeStaleDirs removes the directories under tmp named prefix<pid>-…
// (a PgBouncer's, a replica's) left by test binaries that are no longer
// running (killed before their cleanups ran), as alive says; never this
// process's, never another's still running.
func removeStaleDirs(tmp, prefix string, alive func(pid int) bool) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, prefix+"*-*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), prefix), "-", 2)[0])
		if err != nil || pid <= 0 || pid == os.Getpid() || alive(pid) {
			continue
		}
		os.RemoveAll(dir) // best effort: another run may be removing it too
	}
}

// processAlive reports whether a process with that id exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freePort returns a loopback TCP port nothing listens on now. Another
// process may take it before PgBouncer does; then PgBouncer exits, saying so.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PgBouncerAdmin runs a SHOW command on the admin console of the PgBouncer
// through reaches, and returns its rows as maps of column to text. It logs in
// as through's user, whom the PgBouncer the harness starts makes an admin; on
// the PgBouncer of WORKSHOP_PGBOUNCER_URL, as that URL's user, the trainer's
// admin (through's may be a login role a test made, which is none).
func PgBouncerAdmin(ctx context.Context, through *pgx.ConnConfig, show string) ([]map[string]string, error) {
	cfg := through.Copy()
	if url := os.Getenv(workshopenv.PgBouncerURL); url != "" {
		admin, err := pgx.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("PgBouncer's admin console: %s: %w", workshopenv.PgBouncerURL, err)
		}
		cfg.User, cfg.Password = admin.User, admin.Password
	}
	cfg.Database = "pgbouncer"
	cfg.Tracer = nil
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("PgBouncer's admin console: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, show)
	if err != nil {
		return nil, fmt.Errorf("PgBouncer's admin console: %s: %w", show, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		values := rows.RawValues()
		row := make(map[string]string, len(values))
		for i, field := range rows.FieldDescriptions() {
			row[field.Name] = string(values[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("PgBouncer's admin console: %s: %w", show, err)
	}
	return out, nil
}
