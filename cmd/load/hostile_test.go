package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"works-vs-scales/internal/load"
)

func TestHostileFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-target=http://"},                     // no host
		{"-target=http://[::1"},                 // unparsable
		{"-target=ftp://127.0.0.1:8080"},        // not http
		{"-target=http://127.0.0.1:8080?x=1"},   // a query would swallow every path
		{"-target=http://127.0.0.1:8080/#frag"}, // so would a fragment
		{"-target=http://127.0.0.1:1", "-rates=-5"},
		{"-target=http://127.0.0.1:1", "-rates="},
		{"-target=http://127.0.0.1:1", "-rates=1,,2"},
		{"-target=http://127.0.0.1:1", "-rates=99999999999999999999"},
		{"-target=http://127.0.0.1:1", "-rates=" + "100001"}, // above load.MaxRate: refused before any payment is made
		{"-target=http://127.0.0.1:1", "-duration=0"},
		{"-target=http://127.0.0.1:1", "-duration=-1s"},
		{"-target=http://127.0.0.1:1", "-duration=2562047h"}, // rate × duration overflows, and the results fill memory
		{"-target=http://127.0.0.1:1", "-timeout=0"},
		{"-target=http://127.0.0.1:1", "-count=-1"},
		{"-target=http://127.0.0.1:1", "-impl="},
		{"-target=http://127.0.0.1:1", "-slo-bad=NaN"},
		{"-target=http://127.0.0.1:1", "-slo-bad=-1"},
		{"-impl=nosuch"},
		{"-impl="},
	} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	if load.MaxRate != 100_000 {
		t.Fatalf("load.MaxRate is %d: update the case above", load.MaxRate)
	}
}

// hostileServers are services a trainer may point -target at by mistake, or
// that fail under the load: each must end the run with an error, within the
// client's timeout of each request it sends, and leave no goroutine behind.
func hostileServers(t *testing.T) map[string]string {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()
	start := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	return map[string]string{
		"refused": refused,
		"500s": start(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "broken", http.StatusInternalServerError)
		}),
		"404s, a service that is not the shop": start(func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}),
		"no answer": start(func(w http.ResponseWriter, r *http.Request) {
			// A server sees its client go only once it has read the body.
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}),
		"slowloris": start(func(w http.ResponseWriter, r *http.Request) {
			// A 200 at once, then a byte at a time, never ending.
			w.WriteHeader(http.StatusOK)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
					if _, err := io.WriteString(w, " "); err != nil {
						return
					}
					w.(http.Flusher).Flush()
				}
			}
		}),
	}
}

func TestAHostileTargetEndsTheRunWithAnError(t *testing.T) {
	for name, url := range hostileServers(t) {
		for _, mix := range []string{"", "pay-reuse=0"} { // with and without payments made before the ramp
			t.Run(name+"/mix="+mix, func(t *testing.T) {
				args := []string{"-target=" + url, "-rates=20,40", "-duration=200ms", "-timeout=200ms", "-slo-p99=100ms"}
				if mix != "" {
					args = append(args, "-mix="+mix)
				}
				o, err := parseFlags(args, io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				began := time.Now()
				var out strings.Builder
				err = run(t.Context(), o, &out, io.Discard)
				took := time.Since(began)
				if err == nil {
					t.Fatalf("no error; results:\n%s", out.String())
				}
				t.Logf("%v, after %v", err, took.Round(time.Millisecond))
				// Payments are made one at a time, each bounded by the
				// timeout; then the warm-up's second: nothing hangs.
				if took > 10*time.Second {
					t.Errorf("took %v to fail", took)
				}
				if strings.Contains(out.String(), "BenchmarkShopd") {
					t.Errorf("results written for a service that served nothing:\n%s", out.String())
				}
				if mix != "" && name != "slowloris" && !errors.Is(err, errNotServing) {
					t.Errorf("err = %v, want the warm-up's errNotServing", err)
				}
				waitForNoClientGoroutines(t)
			})
		}
	}
}

// clientGoroutines returns the stacks of the goroutines of the load's
// client side: its connections' (net/http's persistConn), vegeta's and
// internal/load's. The test's servers have goroutines of their own.
func clientGoroutines() []string {
	buf := make([]byte, 1<<22)
	var client []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "tsenart/vegeta") || strings.Contains(g, "works-vs-scales/internal/load.") {
			client = append(client, g)
		}
	}
	return client
}

// waitForNoClientGoroutines fails t unless the client's goroutines are gone
// within a few seconds: a connection's end a moment after it is closed.
func waitForNoClientGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(clientGoroutines()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if left := clientGoroutines(); len(left) > 0 {
		t.Errorf("%d goroutines of the client left after the run:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}
