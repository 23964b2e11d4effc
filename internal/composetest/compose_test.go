// Package composetest proves docker-compose.yml: with WORKSHOP_COMPOSE_TEST=1
// (the CI's container step sets it) it brings every service up with
// docker-compose, on the images the WORKSHOP_*_IMAGE variables name, checks
// lesson 13's PgBouncer (transaction pooling) and lesson 18's replica (in
// recovery, replaying the server's WAL) through the URLs the file's header
// gives, runs lessons 1, 15 and 18 and lesson 13's PgBouncer tests against
// them, and takes it all down. Without the variable it skips: it needs Docker
// and minutes.
package composetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	project := fmt.Sprintf("wvs-compose-%d", os.Getpid())
	run := func(args ...string) error {
		args = append(append(compose[1:len(compose):len(compose)], "-p", project, "-f", filepath.Join(root, "docker-compose.yml"),
			"--profile", "pgbouncer", "--profile", "replica"), args...)
		cmd := exec.Command(compose[0], args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", cmd, err, out)
		}
		return nil
	}
	t.Cleanup(func() { // registered before anything starts
		if err := run("down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("take it down: %v", err)
		}
	})
	started := time.Now()
	require.NoError(t, run("up", "-d"))

	url := func(port int) string {
		return fmt.Sprintf("postgres://postgres:workshop@127.0.0.1:%d/postgres?sslmode=disable", port)
	}
	urls := []string{
		"WORKSHOP_DATABASE_URL=" + url(ports["WORKSHOP_PG_PORT"]),
		fmt.Sprintf("WORKSHOP_REDIS_URL=redis://127.0.0.1:%d/0", ports["WORKSHOP_REDIS_PORT"]),
		"WORKSHOP_PGBOUNCER_URL=" + url(ports["WORKSHOP_PGBOUNCER_PORT"]),
		"WORKSHOP_REPLICA_URL=" + url(ports["WORKSHOP_REPLICA_PORT"]),
		"WORKSHOP_REPLICA_OWN=1", // this project's replica, as docker-compose.yml's header says: lesson 18 sets its delay
	}
	// The replica is the last to come up: it copies the server once that is healthy.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, port := range []string{"WORKSHOP_REPLICA_PORT", "WORKSHOP_PGBOUNCER_PORT"} {
		require.NoError(t, waitForPostgres(ctx, url(ports[port])), port)
	}
	t.Logf("docker-compose up: %s to a streaming replica", time.Since(started).Round(time.Second))
	for _, u := range urls {
		t.Logf("export %s", u)
	}

	// Lesson 13's PgBouncer pools in transaction mode, and its admin console answers.
	through, err := pgx.Connect(ctx, url(ports["WORKSHOP_PGBOUNCER_PORT"]))
	require.NoError(t, err, "through PgBouncer")
	var one int
	require.NoError(t, through.QueryRow(ctx, "SELECT 1").Scan(&one), "through PgBouncer")
	require.NoError(t, through.Close(ctx))
	admin, err := pgx.Connect(ctx, strings.Replace(url(ports["WORKSHOP_PGBOUNCER_PORT"]), "/postgres?", "/pgbouncer?", 1)+"&default_query_exec_mode=simple_protocol")
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
	primary, err := pgx.Connect(ctx, url(ports["WORKSHOP_PG_PORT"]))
	require.NoError(t, err)
	defer primary.Close(ctx)
	standby, err := pgx.Connect(ctx, url(ports["WORKSHOP_REPLICA_PORT"]))
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
		test.Env = append(os.Environ(), urls...)
		out, err := test.CombinedOutput()
		require.NoError(t, err, "%s on docker-compose:\n%s", test, out)
		for _, line := range lessons.ran {
			require.Contains(t, string(out), line, "%s on docker-compose", test)
		}
		t.Logf("%s: passed", test)
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
