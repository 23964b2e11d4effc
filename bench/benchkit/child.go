package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/pgtest"
)

// childEnv, in a child of a test binary, names the test it runs for its
// parent (see StartChild).
const childEnv = "WVS_CHILD_OF_TEST"

// InChild reports whether this process is a child that StartChild started to
// run tb's test: the test then plays the child's part.
func InChild(tb testing.TB) bool { return os.Getenv(childEnv) == tb.Name() }

// A Child is the test binary run again as a child process, running one test:
// a second instance of the code a check tries (a mutex in one process does
// not hold in another), or a run whose failure would fail its parent (a data
// race the race detector reports).
type Child struct {
	cmd  *exec.Cmd
	out  bytes.Buffer // stdout and stderr; read only once done is closed
	done chan struct{}
	err  error // how it exited; read only once done is closed
}

// StartChild starts this test binary again, running t's test alone (in which
// InChild(t) is true), with env added to this process's environment. The
// child is killed if it still runs when t ends. A child that needs the
// database is given the parent's server (workshopenv.DatabaseURL set to
// pgtest.ServerURL), or a database of the parent's (ChildDatabaseURL).
func StartChild(t *testing.T, env ...string) (*Child, error) {
	t.Helper()
	args := []string{"-test.run=" + runPattern(t.Name()), "-test.count=1", "-test.v"}
	if deadline, ok := t.Deadline(); ok {
		// Its own -timeout panic, with its goroutines, before the parent's.
		args = append(args, "-test.timeout="+max(time.Until(deadline)-5*time.Second, time.Second).String())
	}
	c := &Child{cmd: exec.Command(os.Args[0], args...), done: make(chan struct{})}
	c.cmd.Env = append(append(os.Environ(), childEnv+"="+t.Name()), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s again as a child: %w", t.Name(), err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c, nil
}

// Done is closed when the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Wait waits for the child to exit and returns what it printed, and an error
// if it did not exit 0.
func (c *Child) Wait() (string, error) {
	<-c.done
	return c.out.String(), c.err
}

// RunInChild runs t's test again in a child process, as StartChild does, and
// returns what it printed and how it exited.
func RunInChild(t *testing.T, env ...string) (string, error) {
	t.Helper()
	c, err := StartChild(t, env...)
	if err != nil {
		return "", err
	}
	return c.Wait()
}

// runPattern is the -test.run pattern that selects the test named name, and
// no other: ^Parent$/^sub$ for a subtest.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// ChildDatabaseURL returns a URL of db's database as this process reaches it
// (through the harness's round-trip proxy when there is one), with db's
// application_name, for a child process to open a pool of its own on the
// same database: its sessions are then the parent run's, to the harness.
func ChildDatabaseURL(db *pgxpool.Pool) string {
	cfg := db.Config().ConnConfig
	u := url.URL{Scheme: "postgres", Path: "/" + cfg.Database}
	q := url.Values{}
	if strings.HasPrefix(cfg.Host, "/") { // a Unix socket's directory
		q.Set("host", cfg.Host)
		q.Set("port", strconv.Itoa(int(cfg.Port)))
	} else {
		u.Host = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	} else {
		u.User = url.User(cfg.User)
	}
	if cfg.TLSConfig == nil {
		q.Set("sslmode", "disable")
	} else {
		q.Set("sslmode", "require")
	}
	if name := cfg.RuntimeParams["application_name"]; name != "" {
		q.Set("application_name", name)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// DropUnderPrefix registers a cleanup that drops the databases the harness
// made under prefix, a child's own (its copies and its templates), once the
// test and the children it started are done: a child's prefix is not this
// run's, so neither this run's cleanup nor dropdbs of this run's prefix would
// see them. Call it before starting the child, so that its cleanup runs after
// the child's.
func DropUnderPrefix(t testing.TB, prefix string) {
	t.Helper()
	url := pgtest.ServerURL(t)
	t.Cleanup(func() {
		verdicts, err := pgtest.DropDatabases(context.Background(), url, pgtest.DropOptions{Prefix: prefix, Templates: true})
		if err != nil {
			t.Errorf("drop the databases a child made under %s: %v", prefix, err)
		}
		for _, v := range verdicts {
			if !v.Dropped {
				t.Logf("kept %s: %s", v.Name, v.Reason)
			}
		}
	})
}
