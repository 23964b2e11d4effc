package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"works-vs-scales/internal/load"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/report"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

func TestFlags(t *testing.T) {
	t.Setenv(workshopenv.DatabaseURL, "postgres://u@127.0.0.1:1/db")
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.impls, ",") != "naive,join,page,scalable" || o.mix != shopd.DefaultMix || o.slo.p99 != 100*time.Millisecond || o.slo.badPct != 1 {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags([]string{"-target=http://127.0.0.1:8080", "-rates=10,20", "-mix=pay-reuse=0,page=50"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.target != "http://127.0.0.1:8080" || strings.Join(o.impls, ",") != "target" || o.mix.PayReuse != 0 || o.mix.PageSize != 50 || o.mix.Orders != shopd.DefaultMix.Orders {
		t.Errorf("-target: %+v", o)
	}
	for _, args := range [][]string{
		{"-target=localhost:8080"},                    // no scheme
		{"-target=http://127.0.0.1:8080", "-rtt=1ms"}, // a child's flag
		{"-target=http://127.0.0.1:8080", "-impl=a/b"},
		{"-impl=naive,fast"},
		{"-impl=naive,naive"},
		{"-rates=100,50"}, // not a ramp
		{"-rates=0"},
		{"-slo-p99=3s", "-timeout=2s"}, // an SLO no answer can miss
		{"-slo-bad=101"},
		{"-count=0"},
		{"-mix=orders=-1"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	t.Setenv(workshopenv.DatabaseURL, "")
	if _, err := parseFlags(nil, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("no database and no -target: err = %v", err)
	}
}

func TestParseMix(t *testing.T) {
	m, err := parseMix("orders=1,products=2,pay-new=3,pay-reuse=4,page=5")
	if err != nil {
		t.Fatal(err)
	}
	if want := (shopd.Mix{Orders: 1, Products: 2, PayNew: 3, PayReuse: 4, PageSize: 5}); m != want {
		t.Errorf("%+v, want %+v", m, want)
	}
	if back, err := parseMix(m.String()); err != nil || back != m {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{"orders", "reads=5", "orders=1,orders=2", "orders=x", "orders=0,products=0,pay-new=0,pay-reuse=0", "page=0", "page=101", "page=100000", "pay-new=-1"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("%q read", bad)
		}
	}
}

func TestTheWorkloadSendsTheMix(t *testing.T) {
	wl := shopd.Workload{Base: "http://shop", Scale: shop.Small, Mix: shopd.Mix{Orders: 5, Products: 3, PayNew: 1, PayReuse: 1, PageSize: 7}, Run: "r"}
	prepared := map[string]string{}
	for _, p := range wl.Prepared() {
		prepared[p.Header.Get("Idempotency-Key")] = string(p.Body)
	}
	counts := map[string]int{}
	fresh := map[string]bool{}
	targets := wl.Targets(3)
	const n = 10_000
	for seq := range uint64(n) {
		t1, t2 := targets(seq), targets(seq)
		if t1.URL != t2.URL || !bytes.Equal(t1.Body, t2.Body) {
			t.Fatalf("seq %d drawn twice differs", seq)
		}
		if t1.Header.Get("X-Forwarded-For") == "" {
			t.Fatalf("%s names no client", t1.URL)
		}
		switch {
		case strings.HasSuffix(t1.URL, "/orders?limit=7"):
			counts["orders"]++
		case strings.Contains(t1.URL, "/products/"):
			counts["products"]++
		case t1.Method == http.MethodPost:
			key := t1.Header.Get("Idempotency-Key")
			if body, ok := prepared[key]; ok {
				if body != string(t1.Body) {
					t.Fatalf("a retry of %s with another body", key)
				}
				counts["pay-reuse"]++
				continue
			}
			if fresh[key] {
				t.Fatalf("fresh key %s twice", key)
			}
			fresh[key] = true
			var req map[string]any
			if err := json.Unmarshal(t1.Body, &req); err != nil || t1.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("payment %s: %v", t1.Body, err)
			}
			counts["pay-new"]++
		default:
			t.Fatalf("unexpected %s %s", t1.Method, t1.URL)
		}
	}
	for kind, share := range map[string]float64{"orders": 0.5, "products": 0.3, "pay-new": 0.1, "pay-reuse": 0.1} {
		if got := float64(counts[kind]) / n; got < share-0.02 || got > share+0.02 {
			t.Errorf("%s: %.3f of the requests, want %.2f", kind, got, share)
		}
	}
}

func TestCapacityStopsAtTheKneeAndAtAnInvalidStep(t *testing.T) {
	objective := slo{p99: 100 * time.Millisecond, badPct: 1}
	step := func(rate float64, p99 time.Duration, errors int, kept bool) stepResult {
		s := load.Step{Rate: rate, Requests: 1000, OK: 1000 - errors, Errors: errors, OKP99: p99, Scheduled: 1000}
		if !kept {
			s.Late = 100
		}
		return stepResult{Step: s}
	}
	for _, c := range []struct {
		name  string
		steps []stepResult
		want  capacityResult
	}{
		{"the knee", []stepResult{step(100, 5*time.Millisecond, 0, true), step(200, 90*time.Millisecond, 10, true), step(400, 101*time.Millisecond, 0, true), step(800, time.Millisecond, 0, true)},
			capacityResult{rate: 200, p99: 90 * time.Millisecond, kneeFound: true}},
		{"too many errors", []stepResult{step(100, 5*time.Millisecond, 0, true), step(200, 5*time.Millisecond, 11, true)},
			capacityResult{rate: 100, p99: 5 * time.Millisecond, kneeFound: true}},
		{"the generator fell behind", []stepResult{step(100, 5*time.Millisecond, 0, true), step(200, 5*time.Millisecond, 0, false), step(400, time.Second, 0, true)},
			capacityResult{rate: 100, p99: 5 * time.Millisecond, invalid: true}},
		{"the ramp ended first", []stepResult{step(100, 5*time.Millisecond, 0, true)},
			capacityResult{rate: 100, p99: 5 * time.Millisecond}},
		{"not even the first", []stepResult{step(100, time.Second, 0, true)}, capacityResult{kneeFound: true}},
	} {
		if got := capacity(c.steps, objective); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// fakeShop answers the routes the workload asks, 200 each, after wait; a
// request whose path is in hang waits until its client gives up.
func fakeShop(t *testing.T, hang string) (*httptest.Server, *atomic.Int64) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if hang != "" && strings.Contains(r.URL.Path, hang) && r.Method == http.MethodGet {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

// failingSampler samples once, then fails as a terminated backend does.
type failingSampler struct {
	calls  atomic.Int64
	closed atomic.Bool
}

func (f *failingSampler) activeBackends(context.Context) (int, error) {
	if f.calls.Add(1) > 1 {
		return 0, &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}
	}
	return 1, nil
}
func (f *failingSampler) version(context.Context) (string, error) { return "15", nil }
func (f *failingSampler) Close()                                  { f.closed.Store(true) }

func TestATargetIsLoadedAndLosingTheMonitorCostsOnlyItsSamples(t *testing.T) {
	srv, requests := fakeShop(t, "/products/")
	// No payments made before the ramp (pay-reuse=0): each must be answered
	// within -timeout, and this one is short so that the hanging products
	// time out soon; under -race on a busy machine an instant answer once
	// came too late for it, and the run failed before the monitor was used.
	// The warm-up needs one of its requests answered, not every one.
	o, err := parseFlags([]string{"-target=" + srv.URL, "-rates=20,40", "-duration=300ms", "-timeout=100ms", "-count=2", "-mix=pay-reuse=0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The monitoring connection fails at its second sample, every time it
	// connects: every step loses its samples, and the run goes on.
	var mu sync.Mutex
	var samplers []*failingSampler
	mon := &monitor{logs: io.Discard, connect: func(context.Context) (sampler, error) {
		mu.Lock()
		defer mu.Unlock()
		s := &failingSampler{}
		samplers = append(samplers, s)
		return s, nil
	}}
	var out, table bytes.Buffer
	if err := measure(t.Context(), o, running{base: srv.URL}, mon, &out, &table); err != nil {
		t.Fatal(err)
	}
	mon.Close()
	if requests.Load() == 0 {
		t.Fatal("the target got no request")
	}
	if mon.lost != 4 || len(samplers) != 4 {
		t.Errorf("%d connections lost, %d made; want 4 and 4 (one a step, each step connecting again)", mon.lost, len(samplers))
	}
	text := out.String()
	r, err := report.Parse(&out, "target.bench")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unplaced) > 0 {
		t.Errorf("unplaced: %v", r.Unplaced)
	}
	steps := r.Find("Shopd")
	if steps == nil || len(steps.Sizes) != 2 || steps.Impls[0] != "target" {
		t.Fatalf("Shopd: %+v", steps)
	}
	for _, rate := range steps.Sizes {
		if n := steps.Runs("target", rate, "p99-ms"); n != 2 {
			t.Errorf("rate %v: %d runs, want 2", rate, n)
		}
		if n := steps.Runs("target", rate, "backends-busy"); n != 0 {
			t.Errorf("rate %v: backends-busy written from a lost connection", rate)
		}
		// The products hang until the client's timeout: timeouts, counted
		// apart, with no latency above the timeout; the successes are fast.
		if v, _ := steps.Median("target", rate, "timeouts-%"); v < 10 {
			t.Errorf("rate %v: %v%% timeouts, want the products' share", rate, v)
		}
		if v, _ := steps.Median("target", rate, "p99.9-ms"); v >= 100 {
			t.Errorf("rate %v: p99.9 of successes %v ms, at the timeout", rate, v)
		}
	}
	c := r.Find("Capacity")
	if c == nil || c.Runs("target", 0, "capacity-rps") != 2 {
		t.Fatalf("Capacity: %+v", c)
	}
	if v, _ := c.Median("target", 0, "capacity-rps"); v != 0 {
		t.Errorf("capacity %v with a third of the requests timing out, want 0", v)
	}
	mix := shopd.DefaultMix
	mix.PayReuse = 0
	if !strings.Contains(text, "load-mix: "+mix.String()) || !strings.Contains(text, "slo: p99 of successes <= 100ms") {
		t.Errorf("the mix and the SLO are not in the results:\n%s", text)
	}
}

func TestARealMonitoringConnectionTerminatedCostsOneStep(t *testing.T) {
	url := pgtest.ServerURL(t) // no database fails, saying how to get one
	mon := newMonitor(url, io.Discard)
	defer mon.Close()
	conn, ok := mon.ready(t.Context()).(pgSampler)
	if !ok {
		t.Fatal("no monitoring connection")
	}
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// The administrator terminates it (57P01) before the step samples.
	if _, err := admin.Exec(t.Context(), "SELECT pg_terminate_backend($1)", conn.conn.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	if s := mon.during(t.Context())(); s.ok || mon.lost != 1 {
		t.Errorf("samples %+v, %d lost: want none, one lost", s, mon.lost)
	}
	if s := mon.during(t.Context())(); !s.ok || len(s.busy) == 0 {
		t.Errorf("the next step: samples %+v, want some from a new connection", s)
	}
}

func TestATinyRampAgainstShopdInChildProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts cmd/shopd")
	}
	// The harness's server (no database fails, saying how to get one),
	// for cmd/load and the cmd/shopd children it starts.
	t.Setenv(workshopenv.DatabaseURL, pgtest.ServerURL(t))
	// A shop database of this test's own, which cmd/shopd -init makes and
	// the cleanup, registered first, drops: not the trainee's shopd_top10000.
	name := fmt.Sprintf("%sload_test_%d", workshopenv.Prefix(), time.Now().UnixNano())
	t.Cleanup(func() {
		if _, err := shopd.DropDatabase(context.Background(), os.Getenv(workshopenv.DatabaseURL), name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	o, err := parseFlags([]string{"-impl=naive,scalable", "-rates=5,10", "-duration=500ms", "-count=2", "-timeout=5s", "-slo-p99=5s", "-dbname=" + name}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out, table bytes.Buffer
	// run returns an error if a child does not stop cleanly on SIGTERM:
	// requests answered, background work drained, pools closed last.
	if err := run(t.Context(), o, &out, &table); err != nil {
		t.Fatalf("%v\n%s", err, table.String())
	}
	t.Logf("\n%s", table.String())
	r, err := report.Parse(&out, "children.bench")
	if err != nil {
		t.Fatal(err)
	}
	steps, c := r.Find("Shopd"), r.Find("Capacity")
	if steps == nil || c == nil {
		t.Fatalf("no Shopd or Capacity results in\n%s", out.String())
	}
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		for _, rate := range []float64{5, 10} {
			if n := steps.Runs(impl, rate, "p99-ms"); n != 2 {
				t.Errorf("%s at %v/s: %d runs, want 2", impl, rate, n)
			}
			// Far below any knee: every request of the mix (pages,
			// products, fresh payments, retries) succeeds.
			for _, unit := range []string{"errors-%", "shed-%", "timeouts-%"} {
				if v, _ := steps.Median(impl, rate, unit); v != 0 {
					t.Errorf("%s at %v/s: %s = %v, want 0", impl, rate, unit, v)
				}
			}
		}
		if n := c.Runs(impl, 0, "capacity-rps"); n != 2 {
			t.Errorf("%s: %d capacities, want one a run", impl, n)
		}
	}
	// The runs alternate the wirings, their order rotating.
	var order []string
	for _, line := range strings.Split(r.ConfigValue("service")+"\n"+table.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[2], "capacity") {
			order = append(order, f[1])
		}
	}
	if strings.Join(order, ",") != "naive,scalable,scalable,naive" {
		t.Errorf("wirings ran in the order %v", order)
	}
}
