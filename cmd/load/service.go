package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"works-vs-scales/internal/syncbuf"
)

// A serviceStarter gives the service to load in a wiring.
type serviceStarter interface {
	start(ctx context.Context, impl string) (service, error)
}

// A service is one that is running, until stop.
type service interface {
	url() string
	stop() error
}

// running is a service someone else runs, at url: it is never stopped.
type running struct{ base string }

func (r running) start(context.Context, string) (service, error) { return r, nil }
func (r running) url() string                                    { return r.base }
func (r running) stop() error                                    { return nil }

// children starts cmd/shopd (bin) as a child process, a wiring at a time.
type children struct {
	bin   string
	dbURL string
	rtt   time.Duration
	logs  io.Writer // where a child's output goes when it fails
}

// ShutdownWait is how long a child has to stop after SIGTERM before it is
// killed: shopd's -grace, and a margin.
const ShutdownWait = 15 * time.Second

// child is a cmd/shopd process.
type child struct {
	cmd  *exec.Cmd
	base string
	impl string
	out  *syncbuf.Buffer // written by its pipes, read on failure
	done chan struct{}
	err  error // how it exited, once done is closed
	logs io.Writer
}

func (c children) start(ctx context.Context, impl string) (service, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	ch := &child{base: "http://" + addr, impl: impl, out: &syncbuf.Buffer{Max: 1 << 20}, done: make(chan struct{}), logs: c.logs}
	// The limit per client holds per user: the load names each user's
	// client in X-Forwarded-For. No admin server: nothing reads it here.
	ch.cmd = exec.Command(c.bin, "-impl="+impl, "-db="+c.dbURL, "-addr="+addr, "-admin-addr=",
		"-client-header=X-Forwarded-For", "-rtt="+c.rtt.String(), "-grace=10s")
	ch.cmd.Stdout, ch.cmd.Stderr = ch.out, ch.out
	dieWithParent(ch.cmd) // stop does not run if this process is killed
	if err := ch.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s -impl=%s: %w", c.bin, impl, err)
	}
	go func() { ch.err = ch.cmd.Wait(); close(ch.done) }()
	if err := ch.waitReady(ctx, 60*time.Second); err != nil {
		ch.cmd.Process.Kill()
		<-ch.done
		return nil, fmt.Errorf("shopd -impl=%s: %w\n%s", impl, err, ch.out.Tail(20))
	}
	return ch, nil
}

func (ch *child) url() string { return ch.base }

// waitReady waits until the child answers HTTP, or exits, or within.
func (ch *child) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(ch.base + "/products/1")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-ch.done:
			return fmt.Errorf("exited before it served: %v", ch.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving on %s after %v: %w", ch.base, within, err)
		}
	}
}

// stop sends the child SIGTERM and waits for it to stop: it answers what is
// in flight, drains its background work, then closes its pools. It is an
// error when it does not stop cleanly, or within ShutdownWait.
func (ch *child) stop() error {
	ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch.done:
	case <-time.After(ShutdownWait):
		ch.cmd.Process.Kill()
		<-ch.done
		return fmt.Errorf("shopd -impl=%s: not stopped %v after SIGTERM, killed\n%s", ch.impl, ShutdownWait, ch.out.Tail(20))
	}
	if ch.err != nil {
		return fmt.Errorf("shopd -impl=%s stopped: %w\n%s", ch.impl, ch.err, ch.out.Tail(20))
	}
	return nil
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// buildShopd builds cmd/shopd into dir and returns the binary's path.
func buildShopd(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "shopd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "works-vs-scales/cmd/shopd")
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/shopd: %w\n%s", err, out)
	}
	return bin, nil
}
