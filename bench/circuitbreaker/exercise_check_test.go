package circuitbreaker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	scalable "works-vs-scales/scalable/circuitbreaker"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 10's exercise, in exercises/circuitbreaker. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise10, is in exercise_test.go, behind the exercise tag.

type newTimedPayerFunc func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer

// outagePayments is how many payments each part of exercise 10's check makes
// during an outage, per instance; maxOutageRequests how many of each
// instance's may reach the gateway.
const outagePayments, maxOutageRequests = 20, 10

// outageWorkers is how many workers of each instance pay at once during an
// outage, and the size of each instance's pool.
const outageWorkers = 4

// openWait is how long exercise 10's check waits, on a fake clock, for a
// breaker to let a probe through: a breaker open longer stays open.
const openWait = 5 * time.Minute

// outagePlan is the second instance's part of exercise 10's check: the same
// payments as the first instance's, from workers at once, into the first
// instance's gateway, which hangs.
type outagePlan struct {
	Database   benchkit.Database
	GatewayURL string
	Timeout    time.Duration
}

// payOutcome is what one call to Pay got, as the second instance reports it.
type payOutcome struct {
	Key          string
	PaymentID    int64
	Status       string
	Err          string
	InProgress   bool // the error is shop.ErrInProgress
	DuplicateKey bool // the error is the database's unique_violation
}

// payDuringOutage makes payments 0 to outagePayments-1 (key k<i>) on
// payments from 4 workers at once, once start is closed, and returns what
// each got.
func payDuringOutage(payments benchkit.Payer, start <-chan struct{}) []payOutcome {
	outcomes := make([]payOutcome, outagePayments)
	var done sync.WaitGroup
	for w := range outageWorkers {
		done.Go(func() {
			<-start
			for i := w; i < outagePayments; i += outageWorkers {
				key := fmt.Sprintf("k%d", i)
				payment, err := payments.Pay(context.Background(), key, benchkit.PaymentFor(i))
				outcomes[i] = payOutcome{Key: key, PaymentID: payment.ID, Status: payment.Status}
				if err != nil {
					var pgErr *pgconn.PgError
					outcomes[i].Err, outcomes[i].InProgress = err.Error(), errors.Is(err, shop.ErrInProgress)
					outcomes[i].DuplicateKey = errors.As(err, &pgErr) && pgErr.Code == "23505"
				}
			}
		})
	}
	done.Wait()
	return outcomes
}

// checkExercise10 says what is still wrong with an answer to lesson 10's
// exercise, or nil when it is done. Nothing in it charges a queued payment:
// the answer's breaker must let the gateway be called again by itself.
//
// During an outage, two instances of the answer in two processes (two
// servers of the shop) make the same 20 payments at once, from 4 workers
// each, into one hung gateway and one database: each instance sends it at
// most 10 requests, no payment is lost, and each key ends as one payment,
// queued, with its row in the outbox for the lesson's relay. Then, on the
// fake clock of a testing/synctest bubble (NewPayments takes no clock), two
// instances live through an outage and a recovery: open (no request), after
// openWait half-open (one probe) and open again while the gateway is still
// down, and after openWait more, with the gateway back, one probe that
// passes, then closed (every payment charged).
func checkExercise10(t *testing.T, newPayments newTimedPayerFunc) error {
	benchkit.ServeAsSecondInstance(t, func(t *testing.T, plan outagePlan, ready, _ func()) []payOutcome {
		db, err := plan.Database.Open(t)
		if err != nil {
			return []payOutcome{{Err: err.Error()}}
		}
		payments := newPayments(db, &gateway.Client{URL: plan.GatewayURL, HTTP: &http.Client{}}, plan.Timeout)
		start := make(chan struct{})
		close(start)
		ready()
		return payDuringOutage(payments, start)
	})
	if err := duringAnOutage(t, newPayments); err != nil {
		return err
	}
	return throughARecovery(t, newPayments)
}

// duringAnOutage is the part of checkExercise10 with two processes and a hung
// gateway, in real time.
func duringAnOutage(t *testing.T, newPayments newTimedPayerFunc) error {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	gw.SetFaults(gatewaytest.Faults{Hang: true})
	// Each instance has a pool of outageWorkers, the same on every machine,
	// and a room's budget (WORKSHOP_MAX_CONNS) counts both.
	benchkit.CheckConns(t, 2*outageWorkers)
	pool := benchkit.CheckPool(t, db, outageWorkers)
	database := benchkit.DatabaseOf(t, db)
	database.MaxConns = outageWorkers
	second, err := benchkit.StartSecondInstance(t, outagePlan{Database: database, GatewayURL: gw.URL(), Timeout: outageTimeout})
	if err != nil {
		return err
	}
	answer := newPayments(pool, gw.Client(), outageTimeout)
	start := make(chan struct{})
	var ours []payOutcome
	paid := make(chan struct{})
	go func() {
		defer close(paid)
		ours = payDuringOutage(answer, start)
	}()
	if err := second.Go(); err != nil {
		return err
	}
	close(start)
	<-paid
	var theirs []payOutcome
	if err := second.Result(&theirs); err != nil {
		return err
	}
	requests := gw.Requests()
	if requests > 2*maxOutageRequests {
		return fmt.Errorf("%d requests reached the hung gateway from two servers making the same %d payments, each from 4 workers at once: each payment waited out its timeouts; "+
			"put a breaker in front of the gateway, which opens after a few failures and stops calling it (at most %d requests from each server)",
			requests, outagePayments, maxOutageRequests)
	}
	for i, o := range slices.Concat(ours, theirs) {
		if o.DuplicateKey {
			server := "this server"
			if i >= len(ours) {
				server = "the second server"
			}
			return fmt.Errorf("key %s, paid by both servers at once: %s got the database's duplicate key error (%s): one key, one payment, whichever server takes it; "+
				"the other gets that payment, or shop.ErrInProgress while it is being made (let the unique key on (user_id, idempotency_key) decide, as lesson 9 does)",
				o.Key, server, o.Err)
		}
	}
	var failed []string
	for _, o := range slices.Concat(ours, theirs) {
		if o.Err != "" && !o.InProgress {
			failed = append(failed, fmt.Sprintf("%s: %s", o.Key, o.Err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d payments failed while the gateway was down, the first with %s: a payment that cannot be charged now is lost; "+
			"queue it in the outbox instead (payment_outbox, in the same transaction as its row); a key another server is paying may get shop.ErrInProgress",
			len(failed), 2*outagePayments, failed[0])
	}
	const perKey = `
		SELECT p.idempotency_key, count(DISTINCT p.id), min(p.status), max(p.status),
			count(o.id) FILTER (WHERE o.sent_at IS NULL)
		FROM payments p LEFT JOIN payment_outbox o ON o.payment_id = p.id
		WHERE p.idempotency_key IS NOT NULL
		GROUP BY p.idempotency_key ORDER BY p.idempotency_key`
	rows, err := db.Query(context.Background(), perKey)
	if err != nil {
		return fmt.Errorf("the payments of each key: %w", err)
	}
	type keyRows struct {
		Key              string
		Payments         int
		Status, MaxState string
		Unsent           int
	}
	keys, err := pgx.CollectRows(rows, pgx.RowToStructByPos[keyRows])
	if err != nil {
		return fmt.Errorf("the payments of each key: %w", err)
	}
	statuses := benchkit.PaymentStatuses(t, db)
	if len(keys) != outagePayments {
		return fmt.Errorf("the payments table holds %d keys (%v by status) for %d payments made by both servers: want each payment, with its key (idempotency_key), queued",
			len(keys), statuses, outagePayments)
	}
	for _, k := range keys {
		switch {
		case k.Payments > 1:
			return fmt.Errorf("key %s has %d payment rows: both servers recorded it; one key, one payment, whichever server takes it (let the unique key on (user_id, idempotency_key) decide)",
				k.Key, k.Payments)
		case k.Status != shop.PaymentQueued || k.MaxState != shop.PaymentQueued:
			return fmt.Errorf("the payment of key %s is %s, while the gateway was down (the table: %v): want queued", k.Key, k.Status, statuses)
		case k.Unsent != 1:
			return fmt.Errorf("the payment of key %s is queued with %d unsent rows in payment_outbox: the lesson's relay sends what is there, so want 1, written in the same transaction as the payment",
				k.Key, k.Unsent)
		}
	}
	t.Logf("two servers, the same %d payments each, into a hung gateway: %d requests reached it, each payment queued once, with its outbox row",
		outagePayments, requests)
	return nil
}

// throughARecovery is the part of checkExercise10 on the fake clock of a
// testing/synctest bubble: an outage and a recovery, lived through by two
// instances of the answer in one process, each with a pool of its own.
func throughARecovery(t *testing.T, newPayments newTimedPayerFunc) error {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	// Pools connected outside the bubble, so that nothing inside it dials
	// the database or starts a pool's goroutines.
	benchkit.CheckConns(t, outageWorkers+4+4) // a room's budget (WORKSHOP_MAX_CONNS): the outage's pool is open still
	pools := []*pgxpool.Pool{connectedPool(t, db, 4), connectedPool(t, db, 4)}
	if t.Failed() {
		return fmt.Errorf("the pools for the fake clock")
	}
	var checkErr error
	synctest.Test(t, func(t *testing.T) {
		// A client whose connections close after each reply: none of its
		// goroutines outlives a call, so the bubble can end.
		client := &gateway.Client{URL: gw.URL(), HTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
		servers := []benchkit.Payer{newPayments(pools[0], client, outageTimeout), newPayments(pools[1], client, outageTimeout)}
		checkErr = outageAndRecovery(t, gw, servers)
		// The answers are dropped here; a goroutine of theirs (a breaker's
		// timer) must return before the bubble ends.
		for range 3 {
			synctest.Wait()
			runtime.GC()
			time.Sleep(time.Hour)
		}
	})
	return checkErr
}

// outageAndRecovery runs the outage and the recovery on servers, inside the
// bubble.
func outageAndRecovery(t *testing.T, gw *gatewaytest.Server, servers []benchkit.Payer) error {
	payment := 1000
	// pay makes n payments on each server and returns, per server, how many
	// requests reached the gateway and the statuses of its payments.
	pay := func(n int) (requests []int64, statuses []map[string]int, err error) {
		for s, server := range servers {
			before := gw.Requests()
			got := map[string]int{}
			for range n {
				payment++
				p, err := server.Pay(context.Background(), fmt.Sprintf("r%d", payment), benchkit.PaymentFor(payment))
				if err != nil {
					return nil, nil, fmt.Errorf("server %d, payment %d: %w", s+1, payment, err)
				}
				got[p.Status]++
			}
			requests, statuses = append(requests, gw.Requests()-before), append(statuses, got)
		}
		return requests, statuses, nil
	}
	unavailable := gatewaytest.Faults{FailureRate: 1, Failure: gatewaytest.Failure{Status: http.StatusServiceUnavailable}}
	gw.SetFaults(unavailable)
	requests, statuses, err := pay(outagePayments)
	if err != nil {
		return fmt.Errorf("while the gateway answered 503 to every charge: %w: a payment that cannot be charged now is queued, not failed", err)
	}
	for s := range servers {
		if requests[s] > maxOutageRequests || statuses[s][shop.PaymentQueued] != outagePayments {
			return fmt.Errorf("server %d made %d payments while the gateway answered 503 to every charge (on the fake clock): %d requests reached it, payments %v; want at most %d requests, and every payment queued",
				s+1, outagePayments, requests[s], statuses[s], maxOutageRequests)
		}
	}
	if requests, _, err = pay(1); err != nil {
		return fmt.Errorf("right after the outage opened the breaker: %w", err)
	}
	for s := range servers {
		if requests[s] > 0 {
			return fmt.Errorf("server %d sent %d requests right after its breaker had seen the gateway fail, with no time passed: an open breaker sends none until its time is up", s+1, requests[s])
		}
	}

	time.Sleep(openWait) // on the bubble's clock: at once
	if requests, statuses, err = pay(5); err != nil {
		return fmt.Errorf("%v later, the gateway still down: %w", openWait, err)
	}
	for s := range servers {
		switch {
		case requests[s] == 0:
			return fmt.Errorf("server %d sent no request %v after the outage began (on the fake clock): its breaker stays open; after a while it must let one call through to probe (half-open) (see \"The scales version\")",
				s+1, openWait)
		case requests[s] > 1:
			return fmt.Errorf("server %d sent %d requests for 5 payments %v after the outage began, the gateway still down: half-open lets one call through, the probe, and opens again when it fails (see \"The scales version\")",
				s+1, requests[s], openWait)
		case statuses[s][shop.PaymentQueued] != 5:
			return fmt.Errorf("server %d, 5 payments while the probe failed: %v; want every one queued", s+1, statuses[s])
		}
	}

	gw.SetFaults(gatewaytest.Faults{})
	if requests, _, err = pay(1); err != nil {
		return fmt.Errorf("the gateway back, right after a probe failed: %w", err)
	}
	for s := range servers {
		if requests[s] > 0 {
			return fmt.Errorf("server %d sent %d requests right after its probe failed, with no time passed: a failed probe opens the breaker again, for its whole time", s+1, requests[s])
		}
	}

	time.Sleep(openWait)
	if requests, statuses, err = pay(1); err != nil {
		return fmt.Errorf("the gateway back, %v after the probe failed: %w", openWait, err)
	}
	for s := range servers {
		if requests[s] != 1 || statuses[s][shop.PaymentCharged] != 1 {
			return fmt.Errorf("server %d, the gateway back, %v after its probe failed (on the fake clock): %d requests for 1 payment, payments %v; want the probe sent, and the payment charged",
				s+1, openWait, requests[s], statuses[s])
		}
	}
	if requests, statuses, err = pay(5); err != nil {
		return fmt.Errorf("after a probe that passed: %w", err)
	}
	for s := range servers {
		if requests[s] != 5 || statuses[s][shop.PaymentCharged] != 5 {
			return fmt.Errorf("server %d, after a probe that passed: %d requests for 5 payments, payments %v; a probe that passes closes the breaker, and every payment is charged again",
				s+1, requests[s], statuses[s])
		}
	}
	t.Logf("on a fake clock, two servers: open during the outage, one probe after %v (failed: open again), then a probe that passed and every payment charged", openWait)
	return nil
}

// connectedPool returns a pool of n connections on db's database, every one
// of them connected, closed when t ends.
func connectedPool(t *testing.T, db *pgxpool.Pool, n int32) *pgxpool.Pool {
	cfg := db.Config()
	cfg.MaxConns, cfg.MinConns = n, 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Errorf("a pool of %d: %v", n, err)
		return nil
	}
	t.Cleanup(pool.Close)
	conns := make([]*pgxpool.Conn, 0, n)
	for range n {
		conn, err := pool.Acquire(context.Background())
		if err != nil {
			t.Errorf("connect a pool of %d: %v", n, err)
			break
		}
		conns = append(conns, conn)
	}
	for _, conn := range conns {
		conn.Release()
	}
	return pool
}

func TestExercise10CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
		return newNaivePayments(t, db, gw, timeout)
	})
	require.ErrorContains(t, err, "requests reached the hung gateway from two servers")
	t.Log(err)
}

func TestExercise10CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		pay  newTimedPayerFunc
		want string
	}{
		{"an outbox without a breaker", func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
			return newGuardedPayments(t, db, gw, timeout, alwaysClosed{})
		}, "requests reached the hung gateway from two servers"},
		{"a breaker without an outbox", func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
			return &breakerOnlyPayments{db: db, gateway: gw, timeout: timeout, breaker: newBreaker(t, 3, time.Minute)}
		}, "payments failed while the gateway was down"},
		{"a breaker that never closes", func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
			return newGuardedPayments(t, db, gw, timeout, &openForGoodBreaker{threshold: 3})
		}, "its breaker stays open"},
		{"no half-open", func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
			return newGuardedPayments(t, db, gw, timeout, &resettingBreaker{threshold: 3, openFor: time.Minute})
		}, "half-open lets one call through, the probe"},
		{"queued in memory", func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
			return &memoryQueuePayments{db: db, gateway: gw, timeout: timeout, breaker: newBreaker(t, 3, time.Minute)}
		}, "unsent rows in payment_outbox"},
		{"keys remembered in memory", func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
			return &memoryKeyedPayments{db: db, gateway: gw, timeout: timeout, breaker: newBreaker(t, 3, time.Minute)}
		}, "got the database's duplicate key error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise10(t, tc.pay)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise10CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) benchkit.Payer {
		return newGuardedPayments(t, db, gw, timeout, newBreaker(t, 3, time.Minute))
	}))
}

// alwaysClosed is a wrong answer to exercise 10, as the lesson's Payments'
// guard: no breaker, so every payment waits out its timeout on a hung
// gateway before it is queued.
type alwaysClosed struct{}

func (alwaysClosed) Do(ctx context.Context, op func(ctx context.Context) error) error { return op(ctx) }

func (alwaysClosed) State() scalable.State { return scalable.Closed }

// breakerOnlyPayments is a wrong answer to exercise 10: a breaker in front of
// the gateway, and no outbox, so a payment the breaker stops is lost.
type breakerOnlyPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	timeout time.Duration
	breaker *scalable.Breaker
}

func (p *breakerOnlyPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	var charge gateway.Charge
	err := p.breaker.Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		var err error
		charge, err = p.gateway.Charge(ctx, req, key)
		return err
	})
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, $5, 'charged', $6) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	err = p.db.QueryRow(ctx, insertPayment, key, req.Reference, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	return payment, nil
}

// The wrong answers below are written from the lesson's "Why it breaks" and
// its breaker's three states, as a trainee writes them.

// openForGoodBreaker is a wrong answer to exercise 10, as the lesson's
// Payments' guard: it counts failures and opens, but nothing ever closes it,
// so the gateway is never called again after its first outage.
type openForGoodBreaker struct {
	threshold int
	mu        sync.Mutex
	failures  int
}

func (b *openForGoodBreaker) Do(ctx context.Context, op func(ctx context.Context) error) error {
	b.mu.Lock()
	open := b.failures >= b.threshold
	b.mu.Unlock()
	if open {
		return scalable.ErrOpen
	}
	err := op(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if scalable.IsOutage(err) {
		b.failures++
	} else {
		b.failures = 0
	}
	return err
}

func (b *openForGoodBreaker) State() scalable.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures >= b.threshold {
		return scalable.Open
	}
	return scalable.Closed
}

// resettingBreaker is a wrong answer to exercise 10, as the lesson's
// Payments' guard: it opens after threshold failures, and after openFor it
// simply closes again, with no half-open probe: if the gateway is still down,
// threshold more calls wait on it before the breaker opens again.
type resettingBreaker struct {
	threshold int
	openFor   time.Duration
	mu        sync.Mutex
	failures  int
	openedAt  time.Time
}

func (b *resettingBreaker) Do(ctx context.Context, op func(ctx context.Context) error) error {
	b.mu.Lock()
	if b.failures >= b.threshold {
		if time.Since(b.openedAt) < b.openFor {
			b.mu.Unlock()
			return scalable.ErrOpen
		}
		b.failures = 0 // time is up: closed again
	}
	b.mu.Unlock()
	err := op(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !scalable.IsOutage(err) {
		b.failures = 0
		return err
	}
	if b.failures++; b.failures == b.threshold {
		b.openedAt = time.Now()
	}
	return err
}

func (b *resettingBreaker) State() scalable.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures >= b.threshold && time.Since(b.openedAt) < b.openFor {
		return scalable.Open
	}
	return scalable.Closed
}

// memoryQueuePayments is a wrong answer to exercise 10: a breaker in front
// of the gateway, and while it is open the payment is recorded as queued and
// kept in a slice of the process for a worker to charge later. Nothing is in
// the outbox: the relay never sends it, and a restart forgets it.
type memoryQueuePayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	timeout time.Duration
	breaker *scalable.Breaker
	mu      sync.Mutex
	queue   []shop.Payment
}

func (p *memoryQueuePayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	const paymentOfKey = `SELECT id, status, coalesce(charge_id, '') FROM payments WHERE user_id = $1 AND idempotency_key = $2`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency}
	err := p.db.QueryRow(ctx, paymentOfKey, req.UserID, key).Scan(&payment.ID, &payment.Status, &payment.ChargeID)
	if err == nil {
		return payment, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	charge, err := chargeBehind(ctx, p.breaker, p.gateway, p.timeout, key, req)
	payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
	if err != nil {
		payment.Status = shop.PaymentQueued
	}
	// The key's row, or the row another call made for it meanwhile.
	const insert = `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''))
		ON CONFLICT (user_id, idempotency_key) DO UPDATE SET status = payments.status
		RETURNING id, status`
	err = p.db.QueryRow(ctx, insert, key, req.Reference, req.UserID, req.AmountCents, req.Currency, payment.Status, payment.ChargeID).Scan(&payment.ID, &payment.Status)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	if payment.Status == shop.PaymentQueued {
		p.mu.Lock()
		p.queue = append(p.queue, payment) // a worker charges it when the gateway is back
		p.mu.Unlock()
	}
	return payment, nil
}

// memoryKeyedPayments is a wrong answer to exercise 10: a breaker and an
// outbox, and the keys already paid remembered in a map of the process. A
// second server does not share the map: both record the key, and the
// database's unique key refuses one of them.
type memoryKeyedPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	timeout time.Duration
	breaker *scalable.Breaker
	paid    sync.Map // key → shop.Payment
}

func (p *memoryKeyedPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if paid, ok := p.paid.Load(key); ok {
		return paid.(shop.Payment), nil
	}
	charge, err := chargeBehind(ctx, p.breaker, p.gateway, p.timeout, key, req)
	var payment shop.Payment
	if err == nil {
		payment, err = insertPayment(ctx, p.db, key, req, shop.PaymentCharged, charge.ID)
	} else {
		err = pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
			var err error
			if payment, err = insertPayment(ctx, tx, key, req, shop.PaymentQueued, ""); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO payment_outbox (payment_id) VALUES ($1)`, payment.ID)
			return err
		})
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	p.paid.Store(key, payment)
	return payment, nil
}

// chargeBehind charges req behind breaker, as the naive version tries: up to
// three times, each within timeout.
func chargeBehind(ctx context.Context, breaker scalable.Guard, gw *gateway.Client, timeout time.Duration, key string, req gateway.ChargeRequest) (gateway.Charge, error) {
	var charge gateway.Charge
	var err error
	for range 3 {
		err = breaker.Do(ctx, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var chargeErr error
			charge, chargeErr = gw.Charge(ctx, req, key)
			return chargeErr
		})
		if err == nil || errors.Is(err, scalable.ErrOpen) {
			break
		}
	}
	return charge, err
}

// insertPayment inserts a payment of req with key in status, on db or in a
// transaction.
func insertPayment(ctx context.Context, db interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, key string, req gateway.ChargeRequest, status, chargeID string) (shop.Payment, error) {
	const insert = `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, '')) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: status, ChargeID: chargeID}
	err := db.QueryRow(ctx, insert, key, req.Reference, req.UserID, req.AmountCents, req.Currency, status, chargeID).Scan(&payment.ID)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	return payment, nil
}
