// Package composetest proves docker-compose.yml: with WORKSHOP_COMPOSE_TEST=1
// (the CI's container step sets it) it brings the file up with
// docker-compose, on the images the WORKSHOP_*_IMAGE variables name, first
// with no profile (only postgres and redis may start), then with every
// profile; checks Redis (a PING), lesson 13's PgBouncer (transaction pooling)
// and lesson 18's replica (in recovery, replaying the server's WAL) through
// the URLs the file's header tells a trainee to export, runs lessons 1, 15 and
// 18 and lesson 13's PgBouncer tests against them, and takes it all down.
// Without the variable that test skips (it needs Docker and minutes); the
// header's URLs are checked against the file's ports all the same.
package composetest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestComposeServesTheLessons(t *testing.T) {
	if os.Getenv("WORKSHOP_COMPOSE_TEST") != "1" {
		t.Skip("set WORKSHOP_COMPOSE_TEST=1 to bring docker-compose.yml up (needs Docker and its images)")
	}
	root := moduleRoot(t)
	compose := composeCommand(t)
	ports := map[string]int{}
	for _, name := range []string{"WORKSHOP_PG_PORT", "WORKSHOP_REDIS_PORT", "WORKSHOP_PGBOUNCER_PORT", "WORKSHOP_REPLICA_PORT"} {
		ports[name] = freePort(t)
	}
	env := os.Environ()
	for name, port := range ports {
		env = append(env, fmt.Sprintf("%s=%d", name, port))
	}
	file, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	exports, err := headerExports(string(file), ports)
	require.NoError(t, err, "docker-compose.yml's header")
	vars := map[string]string{}
	for _, e := range exports {
		name, value, _ := strings.Cut(e, "=")
		vars[name] = value
	}
	for _, name := range []string{"WORKSHOP_DATABASE_URL", "WORKSHOP_REDIS_URL", "WORKSHOP_PGBOUNCER_URL", "WORKSHOP_REPLICA_URL", "WORKSHOP_REPLICA_OWN"} {
		require.Contains(t, vars, name, "docker-compose.yml's header tells a trainee to export it")
	}

	project := fmt.Sprintf("wvs-compose-%d", os.Getpid())
	run := func(profiles bool, args ...string) error {
		global := append(slices.Clone(compose[1:]), "-p", project, "-f", filepath.Join(root, "docker-compose.yml"))
		if profiles {
			global = append(global, "--profile", "pgbouncer", "--profile", "replica")
		}
		cmd := exec.Command(compose[0], append(global, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", cmd, err, out)
		}
		return nil
	}
	t.Cleanup(func() { // registered before anything starts
		if err := run(true, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("take it down: %v", err)
		}
	})
	started := time.Now()
	// A plain up, as a trainee's first: the profiles' services stay down.
	require.NoError(t, run(false, "up", "-d"))
	require.Equal(t, []string{"postgres", "redis"}, services(t, project), "docker-compose up with no profile")
	require.NoError(t, run(true, "up", "-d"))

	// The replica is the last to come up: it copies the server once that is healthy.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, name := range []string{"WORKSHOP_REPLICA_URL", "WORKSHOP_PGBOUNCER_URL"} {
		require.NoError(t, waitForPostgres(ctx, vars[name]), name)
	}
	t.Logf("docker-compose up: %s to a streaming replica", time.Since(started).Round(time.Second))
	for _, e := range exports {
		t.Logf("export %s", e)
	}

	// Redis answers (lessons 6 and 7).
	require.NoError(t, waitForRedis(ctx, vars["WORKSHOP_REDIS_URL"]), "WORKSHOP_REDIS_URL")

	// Lesson 13's PgBouncer pools in transaction mode, and its admin console answers.
	through, err := pgx.Connect(ctx, vars["WORKSHOP_PGBOUNCER_URL"])
	require.NoError(t, err, "through PgBouncer")
	var one int
	require.NoError(t, through.QueryRow(ctx, "SELECT 1").Scan(&one), "through PgBouncer")
	require.NoError(t, through.Close(ctx))
	adminCfg, err := pgx.ParseConfig(vars["WORKSHOP_PGBOUNCER_URL"])
	require.NoError(t, err)
	adminCfg.Database = "pgbouncer"
	adminCfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	admin, err := pgx.ConnectConfig(ctx, adminCfg)
	require.NoError(t, err, "PgBouncer's admin console")
	var poolMode string
	require.NoError(t, func() error {
		r, err := admin.Query(ctx, "SHOW CONFIG")
		if err != nil {
			return err
		}
		for r.Next() {
			v := r.RawValues()
			if string(v[0]) == "pool_mode" {
				poolMode = string(v[1])
			}
		}
		return r.Err()
	}())
	require.NoError(t, admin.Close(ctx))
	require.Equal(t, "transaction", poolMode, "lesson 13 wants transaction pooling")

	// Lesson 18's replica is in recovery and replays what the server writes.
	primary, err := pgx.Connect(ctx, vars["WORKSHOP_DATABASE_URL"])
	require.NoError(t, err)
	defer primary.Close(ctx)
	standby, err := pgx.Connect(ctx, vars["WORKSHOP_REPLICA_URL"])
	require.NoError(t, err)
	defer standby.Close(ctx)
	var inRecovery bool
	require.NoError(t, standby.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	require.True(t, inRecovery, "the replica is a standby")
	var lsn string
	require.NoError(t, primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn))
	var caughtUp bool
	for !caughtUp {
		require.NoError(t, standby.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&caughtUp), "the replica replays the server's WAL")
		if !caughtUp {
			select {
			case <-ctx.Done():
				t.Fatalf("the replica did not replay %s: %v", lsn, ctx.Err())
			case <-time.After(200 * time.Millisecond): // polling replay
			}
		}
	}

	// The lessons run on the URLs as a trainee's would: 1, 15
	// (pg_stat_statements) and 18 (the replica service) whole; 13's PgBouncer
	// tests through the pgbouncer service, as login roles the harness makes
	// (the service looks them up with auth_query). Each must have run, not
	// skipped.
	for _, lessons := range []struct {
		args []string
		ran  []string
	}{
		{
			args: []string{"./bench/nplusone", "./bench/observability", "./bench/replicas"},
			ran:  []string{"--- PASS: TestExercise18CheckPassesOnTheAnswer", "--- PASS: TestReadYourWrites/"},
		},
		{
			args: []string{"-run", "^(TestManyInstancesExceedTheServersConnections|TestPreparedStatementsBehindPgBouncer)$", "./bench/connections"},
			ran:  []string{"--- PASS: TestManyInstancesExceedTheServersConnections/through=pgbouncer", "--- PASS: TestPreparedStatementsBehindPgBouncer/shop=naive"},
		},
	} {
		test := exec.Command("go", append([]string{"test", "-count=1", "-timeout=30m", "-v"}, lessons.args...)...)
		test.Dir = root
		test.Env = append(os.Environ(), exports...)
		out, err := test.CombinedOutput()
		require.NoError(t, err, "%s on docker-compose:\n%s", test, out)
		for _, line := range lessons.ran {
			require.Contains(t, string(out), line, "%s on docker-compose", test)
		}
		t.Logf("%s: passed", test)
	}
}

// TestHeaderExportsFollowThePorts runs without Docker: every URL in
// docker-compose.yml's header is on the default of a port the file
// publishes, so that the port a test (or a trainee) sets is the one it
// names.
func TestHeaderExportsFollowThePorts(t *testing.T) {
	file, err := os.ReadFile(filepath.Join(moduleRoot(t), "docker-compose.yml"))
	require.NoError(t, err)
	ports := map[string]int{"WORKSHOP_PG_PORT": 1, "WORKSHOP_REDIS_PORT": 2, "WORKSHOP_PGBOUNCER_PORT": 3, "WORKSHOP_REPLICA_PORT": 4}
	exports, err := headerExports(string(file), ports)
	require.NoError(t, err)
	require.Equal(t, []string{
		"WORKSHOP_DATABASE_URL=postgres://postgres:workshop@127.0.0.1:1/postgres?sslmode=disable",
		"WORKSHOP_REDIS_URL=redis://127.0.0.1:2/0",
		"WORKSHOP_PGBOUNCER_URL=postgres://postgres:workshop@127.0.0.1:3/postgres?sslmode=disable",
		"WORKSHOP_REPLICA_URL=postgres://postgres:workshop@127.0.0.1:4/postgres?sslmode=disable",
		"WORKSHOP_REPLICA_OWN=1",
	}, exports)

	_, err = headerExports(strings.Replace(string(file), "127.0.0.1:6432/", "127.0.0.1:6433/", 1), ports)
	require.ErrorContains(t, err, `port "6433" is the default of no port the file publishes`, "a header drifted from its ports")
}

// exportLine is a line of docker-compose.yml's header that tells a trainee
// what to export: "#   export NAME='value'   # a comment".
var exportLine = regexp.MustCompile(`(?m)^#\s+export (WORKSHOP_\w+)=('[^']*'|\S+)`)

// publishedPort is a port docker-compose.yml publishes, with its default:
// ${WORKSHOP_PG_PORT:-5432}.
var publishedPort = regexp.MustCompile(`\$\{(WORKSHOP_\w+_PORT):-(\d+)\}`)

// headerExports returns what the header of compose, docker-compose.yml's
// text, tells a trainee to export, as NAME=value, in its order. Each URL is
// on the port the header gives, which must be the default of a port the file
// publishes: it is replaced by the port ports gives that variable, as the
// header says to do when a port is taken.
func headerExports(compose string, ports map[string]int) ([]string, error) {
	byDefault := map[string]string{} // default port → its variable
	for _, m := range publishedPort.FindAllStringSubmatch(compose, -1) {
		byDefault[m[2]] = m[1]
	}
	header, _, _ := strings.Cut(compose, "\nservices:")
	var exports []string
	for _, m := range exportLine.FindAllStringSubmatch(header, -1) {
		name, value := m[1], strings.Trim(m[2], "'")
		if strings.Contains(value, "://") {
			u, err := url.Parse(value)
			if err != nil {
				return nil, fmt.Errorf("export %s: %w", name, err)
			}
			variable, ok := byDefault[u.Port()]
			if !ok {
				return nil, fmt.Errorf("export %s=%s: port %q is the default of no port the file publishes", name, value, u.Port())
			}
			port, ok := ports[variable]
			if !ok {
				return nil, fmt.Errorf("export %s=%s: the test gives %s no port", name, value, variable)
			}
			u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
			value = u.String()
		}
		exports = append(exports, name+"="+value)
	}
	if len(exports) == 0 {
		return nil, fmt.Errorf("no line \"#   export WORKSHOP_...=...\" before services:")
	}
	return exports, nil
}

// services returns the services of project that have a container, running or
// not, sorted.
func services(t *testing.T, project string) []string {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=com.docker.compose.project="+project,
		"--format", `{{.Label "com.docker.compose.service"}}`).CombinedOutput()
	require.NoError(t, err, "docker ps: %s", out)
	names := strings.Fields(string(out))
	slices.Sort(names)
	return names
}

// waitForRedis returns once url answers a PING.
func waitForRedis(ctx context.Context, url string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("parse %s: %w", url, err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	for {
		err := client.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no PONG: %w", url, err)
		case <-time.After(500 * time.Millisecond): // polling a server that is starting
		}
	}
}

// waitForPostgres returns once url answers a query.
func waitForPostgres(ctx context.Context, url string) error {
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no answer: %w", url, err)
		case <-time.After(500 * time.Millisecond): // polling a server that is starting
		}
	}
}

// composeCommand is docker-compose, or docker compose where only the plugin is.
func composeCommand(t *testing.T) []string {
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	t.Fatal("neither docker-compose nor docker compose is installed")
	return nil
}

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
