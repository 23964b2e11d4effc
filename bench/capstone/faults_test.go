package capstone

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/load"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/rttproxy"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 17's fault drill: the service under open-loop mixed load while the
// database and the payment gateway fail, then a count of the money from the
// gateway's and the database's own records. This file keeps its helpers to
// itself.

var drillOut = flag.String("drill-out", "", "write lesson 17's fault-drill table to this file")

// The drill's load: drillRate requests a second for drillLoad, open loop.
// Of every ten, three are new payments, two send an earlier payment again
// with its key (one at once, as a double click; one a second later, as a
// client that timed out and retries), five read a user's orders.
const (
	drillRate    = 50
	drillLoad    = 17 * time.Second
	drillTimeout = 10 * time.Second // a client's patience
)

// The drill's faults, from the start of the load. The database's go through
// the harness's fault proxy (pgtest.ShopCloneWithFaults), the gateway's
// through the test gateway's switches and a proxy in front of it.
var drillFaults = []struct {
	at   time.Duration
	what string
}{
	{1 * time.Second, "gateway: 200 ms to answer, within both wirings' timeouts (charges in flight when the database fails)"},
	{2 * time.Second, "database: every connection reset"},
	{3 * time.Second, "database: connections refused"},
	{6 * time.Second, "database: back"},
	{8 * time.Second, "gateway: 2.5 s to answer, past both wirings' timeouts (300 ms a try scalable, 2 s naive)"},
	{11 * time.Second, "gateway: down, connections refused"},
	{14 * time.Second, "gateway: back"},
}

// The windows in which the drill times the recovery: from a fault's end to
// the next fault, or to the end of the load.
var (
	drillDatabaseBack = [2]time.Duration{6 * time.Second, 8 * time.Second}
	drillGatewayBack  = [2]time.Duration{14 * time.Second, drillLoad}
)

// drillSettle is how long the drill waits, after the load, for the service
// to finish the payments it took: the scalable wiring's reconciler needs a
// payment's lease (seconds) to pass first.
const drillSettle = 2 * time.Minute

// drillSlowGateway is how long the slowed gateway takes to answer.
const drillSlowGateway = 2500 * time.Millisecond

// drillResult is what one wiring's drill counted.
type drillResult struct {
	requests int
	byStatus map[int]int // 0: no answer
	timeouts int

	payments           int // new payments sent
	charged            int // charges the gateway made
	chargedUnrecorded  int // charges no payment row records as charged
	recordedUncharged  int // rows charged with a charge the gateway never made
	queuedNeverSent    int // rows still queued, or outbox rows unsent
	pendingNeverSettle int // rows still pending
	duplicates         int // charges repeating another's reference
	failedRows         int // rows settled failed: refused and uncharged
	outboxed           int // payments that went through the outbox
	lookups            int // the gateway asked what it made under a key: the reconciler at work

	recoveredDB, recoveredGateway time.Duration // -1: not within the window
	settled                       time.Duration // -1: not within drillSettle
}

// drillTarget returns the seq-th request of the drill's load on base.
func drillTarget(base string, users int, seq uint64) load.Target {
	header := func(user int) http.Header {
		// Each user is a client of its own, as behind a trusted proxy
		// (shopd.Config.ClientHeader): many users, not one load generator.
		return http.Header{"X-Forwarded-For": {fmt.Sprintf("10.%d.%d.%d", user>>16&255, user>>8&255, user&255)},
			"Content-Type": {"application/json"}}
	}
	payment := func(seq uint64) load.Target {
		user := 1 + int(seq*7919%uint64(users))
		h := header(user)
		h.Set(gateway.IdempotencyKeyHeader, fmt.Sprintf("drill-%d", seq))
		body := fmt.Sprintf(`{"user_id": %d, "amount_cents": %d, "currency": "EUR", "reference": "drill-%d"}`, user, 100+seq%900, seq)
		return load.Target{Method: http.MethodPost, URL: base + "/payments", Header: h, Body: []byte(body)}
	}
	switch seq % 10 {
	case 0, 1, 2:
		return payment(seq) // new
	case 3:
		return payment(seq - 3) // again at once
	case 4:
		if seq >= 4+10*drillRate/10 {
			return payment(seq - 4 - 10*drillRate/10) // again a second later
		}
		return payment(seq - 4)
	}
	user := rand.New(rand.NewPCG(17, seq)).IntN(users) + 1
	return load.Target{Method: http.MethodGet, URL: fmt.Sprintf("%s/users/%d/orders", base, user), Header: header(user)}
}

// drillRun drills the wiring impl and counts.
func drillRun(t *testing.T, impl string) drillResult {
	db, dbFaults := pgtest.ShopCloneWithFaults(t, shop.Small)
	gw := gatewaytest.Start()
	t.Cleanup(gw.Close)
	gwURL, err := url.Parse(gw.URL())
	require.NoError(t, err)
	gwFaults, err := rttproxy.Start("tcp", gwURL.Host, 0)
	require.NoError(t, err)
	t.Cleanup(func() { gwFaults.Close() })
	transport := &http.Transport{MaxIdleConnsPerHost: 100}
	t.Cleanup(transport.CloseIdleConnections)
	client := &gateway.Client{URL: "http://" + gwFaults.Addr().String(), HTTP: &http.Client{Transport: transport}}

	svcCfg := shopd.Config{Impl: impl, DB: db.Config(), Gateway: client, CursorKey: []byte("lesson 17's fault drill key, 32B"),
		ClientHeader: "X-Forwarded-For"}
	benchkit.SkipAboveBudget(t, shopd.Conns(svcCfg)) // a room's budget (WORKSHOP_MAX_CONNS)
	ctx, stop := context.WithCancel(context.Background())
	svc, err := shopd.New(ctx, svcCfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- svc.Serve(ctx, ln, 30*time.Second) }()
	t.Cleanup(func() { stop(); <-served; svc.Close() })
	base := "http://" + ln.Addr().String()

	var mu sync.Mutex
	var answers []load.Answer
	cfg := load.Config{
		Targets:  func(seq uint64) load.Target { return drillTarget(base, shop.Small.Users(), seq) },
		Duration: drillLoad,
		Timeout:  drillTimeout,
		OnAnswer: func(a load.Answer) { mu.Lock(); answers = append(answers, a); mu.Unlock() },
	}
	start := time.Now()
	loaded := make(chan []load.Step, 1)
	go func() {
		steps, err := load.Open(context.Background(), cfg, drillRate)
		assert.NoError(t, err)
		loaded <- steps
	}()
	for _, f := range drillFaults {
		time.Sleep(time.Until(start.Add(f.at)))
		t.Logf("%v: %s", f.at, f.what)
		switch f.what {
		case drillFaults[0].what:
			gw.SetFaults(gatewaytest.Faults{Latency: 200 * time.Millisecond})
		case drillFaults[1].what:
			dbFaults.Reset()
		case drillFaults[2].what:
			dbFaults.Down()
		case drillFaults[3].what:
			dbFaults.Up()
		case drillFaults[4].what:
			gw.SetFaults(gatewaytest.Faults{Latency: drillSlowGateway})
		case drillFaults[5].what:
			gw.SetFaults(gatewaytest.Faults{})
			gwFaults.Down()
		case drillFaults[6].what:
			gwFaults.Up()
		}
	}
	steps := <-loaded
	loadEnd := time.Now()

	// Settle: wait for the service to finish what it took (a state it
	// reaches on its own), with a generous deadline.
	r := drillResult{settled: -1}
	for deadline := loadEnd.Add(drillSettle); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if drillUnfinished(t, db) == 0 {
			r.settled = time.Since(loadEnd)
			break
		}
	}

	r.requests, r.byStatus, r.timeouts = steps[0].Requests, steps[0].Codes, steps[0].Timeouts
	// The load's targets are its seqs 0 to requests-1, each once: three of
	// every ten are new payments.
	r.payments = r.requests/10*3 + min(r.requests%10, 3)
	r.recoveredDB = drillRecovered(answers, start, drillDatabaseBack)
	r.recoveredGateway = drillRecovered(answers, start, drillGatewayBack)
	drillCount(t, db, gw, &r)
	return r
}

// drillUnfinished returns how many payments the service has taken and not
// finished: pending, or queued and unsent.
func drillUnfinished(tb testing.TB, db *pgxpool.Pool) int {
	tb.Helper()
	var n int
	err := db.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM payments WHERE status IN ('pending', 'queued'))
		     + (SELECT count(*) FROM payment_outbox WHERE sent_at IS NULL)`).Scan(&n)
	if err != nil {
		return -1 // the database is still coming back: not settled
	}
	return n
}

// drillRecovered returns how long after window[0] (from start) the last
// request that failed (5xx, or no answer) was sent, among those sent within
// the window; 0 if none failed, -1 if failures went on to the window's end.
func drillRecovered(answers []load.Answer, start time.Time, window [2]time.Duration) time.Duration {
	from, to := start.Add(window[0]), start.Add(window[1])
	var last time.Time
	for _, a := range answers {
		if a.Sent.Before(from) || !a.Sent.Before(to) {
			continue
		}
		if (a.Status == 0 || a.Status >= 500) && a.Sent.After(last) {
			last = a.Sent
		}
	}
	switch {
	case last.IsZero():
		return 0
	case to.Sub(last) < 250*time.Millisecond:
		return -1
	}
	return last.Sub(from)
}

// drillCount counts the money from the gateway's records and the database's
// rows.
func drillCount(tb testing.TB, db *pgxpool.Pool, gw *gatewaytest.Server, r *drillResult) {
	tb.Helper()
	ctx := context.Background()
	charges := gw.Charges()
	r.charged, r.duplicates, r.lookups = len(charges), gw.Duplicates(), int(gw.Lookups())
	made := make(map[string]bool, len(charges))
	for _, c := range charges {
		made[c.ID] = true
	}
	rows, err := db.Query(ctx, `SELECT status, coalesce(charge_id, '') FROM payments WHERE reference LIKE 'drill-%'`)
	require.NoError(tb, err)
	recorded := make(map[string]bool)
	for rows.Next() {
		var status, chargeID string
		require.NoError(tb, rows.Scan(&status, &chargeID))
		switch status {
		case shop.PaymentCharged:
			recorded[chargeID] = true
			if !made[chargeID] {
				r.recordedUncharged++
			}
		case shop.PaymentQueued:
			r.queuedNeverSent++
		case shop.PaymentPending:
			r.pendingNeverSettle++
		case shop.PaymentFailed:
			r.failedRows++
		}
	}
	require.NoError(tb, rows.Err())
	for id := range made {
		if !recorded[id] {
			r.chargedUnrecorded++
		}
	}
	var unsent int
	require.NoError(tb, db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE sent_at IS NULL), count(*) FROM payment_outbox`).Scan(&unsent, &r.outboxed))
	r.queuedNeverSent = max(r.queuedNeverSent, unsent)
}

func TestShopdFaultDrill(t *testing.T) {
	results := make(map[string]drillResult)
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		t.Run("impl="+impl, func(t *testing.T) {
			r := drillRun(t, impl)
			results[impl] = r
			t.Logf("%+v", r)
			assert.Zero(t, r.recordedUncharged, "no row records a charge the gateway never made")
			if impl == shopd.Naive {
				return // naive loses what it loses: the table shows it
			}
			assert.Zero(t, r.chargedUnrecorded, "every charge recorded")
			assert.Zero(t, r.queuedNeverSent, "every queued payment sent")
			assert.Zero(t, r.pendingNeverSettle, "every pending payment settled")
			assert.Zero(t, r.duplicates, "nothing charged twice")
			assert.GreaterOrEqual(t, r.settled, time.Duration(0), "settled within %v", drillSettle)
			// The faults were felt: the drill proves something.
			assert.Positive(t, r.byStatus[http.StatusServiceUnavailable], "the outage answered 503")
			assert.Positive(t, r.outboxed, "payments went through the outbox while the gateway was out")
		})
	}
	if *drillOut != "" && len(results) == 2 {
		writeDrillTable(t, *drillOut, results[shopd.Naive], results[shopd.Scalable])
	}
}

// writeDrillTable writes lesson 17's table of the drill: each wiring's
// answers and money.
func writeDrillTable(t *testing.T, path string, naive, scalable drillResult) {
	t.Helper()
	dur := func(d time.Duration) string {
		if d < 0 {
			return "not within the window"
		}
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	settled := func(d time.Duration) string {
		if d < 0 {
			return fmt.Sprintf("not within %v", drillSettle)
		}
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	other := func(r drillResult) int {
		n := 0
		for code, count := range r.byStatus {
			switch code {
			case 0, http.StatusOK, http.StatusConflict, http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusInternalServerError:
			default:
				n += count
			}
		}
		return n
	}
	var out strings.Builder
	fmt.Fprintf(&out, "Made by `go test -count 1 -run TestShopdFaultDrill ./bench/capstone -args -drill-out=...` on %s, %s.\n\n",
		pgtest.ServerVersion(t), time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(&out, "Load: %d requests a second for %v, open loop (three in ten new payments, two a payment sent again with its key, five a user's orders). Faults:", drillRate, drillLoad)
	for i, f := range drillFaults {
		sep := ";"
		if i == len(drillFaults)-1 {
			sep = "."
		}
		fmt.Fprintf(&out, " at %v, %s%s", f.at, f.what, sep)
	}
	fmt.Fprintf(&out, "\n\n| | naive | scalable |\n|---|---|---|\n")
	row := func(what string, n, s any) { fmt.Fprintf(&out, "| %s | %v | %v |\n", what, n, s) }
	row("requests sent", naive.requests, scalable.requests)
	row("answered 200", naive.byStatus[http.StatusOK], scalable.byStatus[http.StatusOK])
	row("answered 409, in progress", naive.byStatus[http.StatusConflict], scalable.byStatus[http.StatusConflict])
	row("answered 429, client above its rate", naive.byStatus[http.StatusTooManyRequests], scalable.byStatus[http.StatusTooManyRequests])
	row("answered 503, unavailable or shed", naive.byStatus[http.StatusServiceUnavailable], scalable.byStatus[http.StatusServiceUnavailable])
	row("answered 500", naive.byStatus[http.StatusInternalServerError], scalable.byStatus[http.StatusInternalServerError])
	row("answered otherwise", other(naive), other(scalable))
	row(fmt.Sprintf("no answer within %v", drillTimeout), naive.byStatus[0], scalable.byStatus[0])
	row("new payments sent", naive.payments, scalable.payments)
	row("charges the gateway made", naive.charged, scalable.charged)
	row("**charged, but not recorded**", naive.chargedUnrecorded, scalable.chargedUnrecorded)
	row("**queued, never sent**", naive.queuedNeverSent, scalable.queuedNeverSent)
	row("**pending, never settled**", naive.pendingNeverSettle, scalable.pendingNeverSettle)
	row("**charged twice**", naive.duplicates, scalable.duplicates)
	row("recorded refused, uncharged", naive.failedRows, scalable.failedRows)
	row("sent through the outbox", naive.outboxed, scalable.outboxed)
	row("the gateway asked what it charged under a key", naive.lookups, scalable.lookups)
	row(fmt.Sprintf("last failure after the database was back (window %v)", drillDatabaseBack[1]-drillDatabaseBack[0]), dur(naive.recoveredDB), dur(scalable.recoveredDB))
	row(fmt.Sprintf("last failure after the gateway was back (window %v)", drillGatewayBack[1]-drillGatewayBack[0]), dur(naive.recoveredGateway), dur(scalable.recoveredGateway))
	row("every payment finished, after the load", settled(naive.settled), settled(scalable.settled))
	require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
}
