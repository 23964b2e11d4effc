package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/pgtest"
)

// A second instance is the code under test running in a process of its own,
// as a second server of the same service would: the test binary started
// again, running the same test, which finds itself the second instance and
// does only the part its plan says. Protection that holds inside one process
// (a mutex, a map, a package variable) does not hold across two.
//
// The two talk over the child's standard streams, in lines that start with
// instanceMark: the child says "ready" once it is set up and waits for "go";
// it may report "event" lines while it runs; it ends with "result" and its
// outcome as JSON, then exits.

// instanceEnv, set, holds the plan of a second instance, as JSON.
const instanceEnv = "WVS_SECOND_INSTANCE_PLAN"

// instanceMark starts every line a second instance says to the first.
const instanceMark = "wvs-second-instance: "

// SecondInstance is a second instance of the test that started it, running.
type SecondInstance struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events atomic.Int64
	ready  chan struct{}
	done   chan struct{} // closed when its output has ended and it has exited

	mu     sync.Mutex
	output bytes.Buffer // all it wrote, for the failure message
	result []byte
	err    error
}

// StartSecondInstance starts the running test again in a child process of
// this test binary, as a second instance with plan, and returns once it says
// it is ready, or an error if it ends first or is not ready within a minute.
// The child is killed when the test ends, if it still runs.
//
// The test must call [ServeAsSecondInstance] before it does anything else
// with the database or a server: in the child, that call does the second
// instance's part and exits.
func StartSecondInstance(t *testing.T, plan any) (*SecondInstance, error) {
	t.Helper()
	encoded, err := json.Marshal(plan)
	if err != nil {
		return nil, fmt.Errorf("second instance: encode its plan: %w", err)
	}
	s := &SecondInstance{ready: make(chan struct{}), done: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0], "-test.run="+singleTestPattern(t.Name()), "-test.count=1", "-test.v", "-test.timeout=10m")
	s.cmd.Env = append(os.Environ(), instanceEnv+"="+string(encoded))
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("second instance: %w", err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("second instance: %w", err)
	}
	s.cmd.Stderr = &lockedWriter{s: s}
	t.Cleanup(func() {
		if s.cmd.Process != nil {
			s.cmd.Process.Kill()
		}
		<-s.done
	})
	if err := s.cmd.Start(); err != nil {
		close(s.done)
		return nil, fmt.Errorf("second instance: start %s: %w", os.Args[0], err)
	}
	go s.read(stdout)
	select {
	case <-s.ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("second instance: it ended before it was ready: %w\n%s", s.exitErr(), s.Output())
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("second instance: not ready after a minute; its output:\n%s", s.Output())
	}
}

// singleTestPattern is the -test.run pattern that runs the test named name (with
// its subtests' names, as t.Name gives them) and nothing else.
func singleTestPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// read reads the child's output until it ends, then waits for it to exit.
func (s *SecondInstance) read(stdout io.Reader) {
	defer close(s.done)
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for lines.Scan() {
		line := lines.Text()
		said, ours := strings.CutPrefix(line, instanceMark)
		switch {
		case !ours:
			s.mu.Lock()
			s.output.WriteString(line + "\n")
			s.mu.Unlock()
		case said == "ready":
			close(s.ready)
		case said == "event":
			s.events.Add(1)
		case strings.HasPrefix(said, "result "):
			s.mu.Lock()
			s.result = []byte(strings.TrimPrefix(said, "result "))
			s.mu.Unlock()
		}
	}
	err := s.cmd.Wait()
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Go tells the second instance to start.
func (s *SecondInstance) Go() error {
	if _, err := io.WriteString(s.stdin, "go\n"); err != nil {
		return fmt.Errorf("second instance: tell it to go: %w\n%s", err, s.Output())
	}
	return nil
}

// Events returns how many events the second instance has reported so far.
func (s *SecondInstance) Events() int64 { return s.events.Load() }

// Result waits for the second instance to end and decodes its result into
// v; or returns an error saying how it ended without one, with its output (a
// panic, or a data race the race detector found in it).
func (s *SecondInstance) Result(v any) error {
	<-s.done
	out := s.Output()
	if strings.Contains(out, "WARNING: DATA RACE") {
		return fmt.Errorf("the race detector found a data race in the second instance:\n%s", out)
	}
	s.mu.Lock()
	result := s.result
	s.mu.Unlock()
	if result == nil {
		return fmt.Errorf("second instance: it ended without a result (%v); its output:\n%s", s.exitErr(), out)
	}
	if err := json.Unmarshal(result, v); err != nil {
		return fmt.Errorf("second instance: decode its result: %w", err)
	}
	return nil
}

// Output returns what the second instance wrote that was not said to this
// one: its logs, a panic, a race report.
func (s *SecondInstance) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.output.String()
}

func (s *SecondInstance) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return fmt.Errorf("exited")
	}
	return s.err
}

// lockedWriter appends to a second instance's output.
type lockedWriter struct{ s *SecondInstance }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.output.Write(b)
}

// IsSecondInstance reports whether this test binary runs as a second
// instance.
func IsSecondInstance() bool { return os.Getenv(instanceEnv) != "" }

// ServeAsSecondInstance returns at once in the first instance. In a second
// one it decodes the plan into a P, calls run, prints run's result and exits
// the process, without returning: run calls ready once it is set up, which
// returns when the first instance says go, and event for each event the
// first instance counts (see [SecondInstance.Events]). If run fails t, the
// process exits without a result, and the first instance reports its output.
func ServeAsSecondInstance[P, R any](t *testing.T, run func(t *testing.T, plan P, ready, event func()) R) {
	encoded := os.Getenv(instanceEnv)
	if encoded == "" {
		return
	}
	var plan P
	if err := json.Unmarshal([]byte(encoded), &plan); err != nil {
		fmt.Printf("second instance: decode the plan: %v\n", err)
		os.Exit(2)
	}
	var said sync.Mutex
	say := func(line string) {
		said.Lock()
		defer said.Unlock()
		fmt.Println(instanceMark + line)
	}
	ready := func() {
		say("ready")
		in := bufio.NewReader(os.Stdin)
		if line, err := in.ReadString('\n'); err != nil || line != "go\n" {
			fmt.Printf("second instance: waiting for go, read %q: %v\n", line, err)
			os.Exit(2)
		}
	}
	var result R
	finished := false
	func() {
		defer func() { // run called t.FailNow, or panicked: report why
			if !finished {
				if r := recover(); r != nil {
					fmt.Printf("second instance: panic: %v\n", r)
				}
				fmt.Println("second instance: it failed before its result")
				os.Exit(2)
			}
		}()
		result = run(t, plan, ready, func() { say("event") })
		finished = true
	}()
	encodedResult, err := json.Marshal(result)
	if err != nil {
		fmt.Printf("second instance: encode the result: %v\n", err)
		os.Exit(2)
	}
	say("result " + string(encodedResult))
	os.Exit(0)
}

// A Database is how a second instance reaches the database the first one
// tests on: the server's URL, the database, and the run's application_name,
// which marks its sessions as the run's (see internal/pgtest).
type Database struct {
	URL, Name, ApplicationName string
	// MaxConns is the size of the second instance's pool; 0 keeps
	// pgxpool's default (the machine's CPUs, at least 4). A check that sets
	// it counts it with its own pools (CheckConns).
	MaxConns int32
}

// DatabaseOf returns how a second instance reaches db's database.
func DatabaseOf(t *testing.T, db *pgxpool.Pool) Database {
	t.Helper()
	cfg := db.Config().ConnConfig
	return Database{URL: pgtest.ServerURL(t), Name: cfg.Database, ApplicationName: cfg.RuntimeParams["application_name"]}
}

// Open opens a pool of the second instance's own on the database, closed
// when t ends.
func (d Database) Open(t *testing.T) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		return nil, fmt.Errorf("second instance: parse the database's URL: %w", err)
	}
	cfg.ConnConfig.Database = d.Name
	cfg.ConnConfig.RuntimeParams["application_name"] = d.ApplicationName
	if d.MaxConns > 0 {
		cfg.MaxConns = d.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("second instance: connect to %s: %w", d.Name, err)
	}
	t.Cleanup(pool.Close)
	return pool, nil
}
