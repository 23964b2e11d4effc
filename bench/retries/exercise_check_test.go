package retries

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/singleflight"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 9's exercise, in exercises/retries. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise09, is in exercise_test.go, behind the exercise tag.

type newPayerFunc func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer

// oneKeyPlan is the second instance's part of exercise 9's check: Calls
// calls with one key, at once, on the first instance's database and gateway.
type oneKeyPlan struct {
	Database   benchkit.Database
	GatewayURL string
	Key        string
	Request    gateway.ChargeRequest
	Calls      int
}

// callOutcome is what one call to Pay got, as the second instance reports it.
type callOutcome struct {
	PaymentID    int64
	ChargeID     string
	Err          string
	DuplicateKey bool // the database's unique_violation
}

// outcomeOf is what a call that returned payment and err got.
func outcomeOf(payment shop.Payment, err error) callOutcome {
	var pgErr *pgconn.PgError
	o := callOutcome{PaymentID: payment.ID, ChargeID: payment.ChargeID}
	if err != nil {
		o.Err = err.Error()
		o.DuplicateKey = errors.As(err, &pgErr) && pgErr.Code == "23505" // unique_violation
	}
	return o
}

// checkExercise09 says what is still wrong with an answer to lesson 9's
// exercise, or nil when it is done. Fifty calls with one key, at once, from
// two instances of the answer in two processes (a second server of the
// shop), against one database and one gateway, make one charge and one
// payment row, and each caller gets that payment or an error (in progress,
// never the database's duplicate key); a payment whose first reply was lost
// is charged once. Each part runs on a copy of the shop of its own.
//
// The gateway holds every charge until each caller has reached it or
// returned, so that every caller has done whatever it does before paying
// before any is charged: "at once" is certain, not a race the answer might
// win.
func checkExercise09(t *testing.T, newPayments newPayerFunc) error {
	benchkit.ServeAsSecondInstance(t, func(t *testing.T, plan oneKeyPlan, ready, returned func()) []callOutcome {
		db, err := plan.Database.Open(t)
		if err != nil {
			return []callOutcome{{Err: err.Error()}}
		}
		payments := newPayments(db, &gateway.Client{URL: plan.GatewayURL, HTTP: &http.Client{}})
		start := make(chan struct{})
		results, errs, arrived, wait := benchkit.CallTogether(plan.Calls, func() (shop.Payment, error) {
			<-start
			defer returned()
			return payments.Pay(context.Background(), plan.Key, plan.Request)
		})
		<-arrived
		ready()
		close(start)
		wait()
		outcomes := make([]callOutcome, plan.Calls)
		for i := range outcomes {
			outcomes[i] = outcomeOf(results[i], errs[i])
		}
		return outcomes
	})

	const callers, key = 50, "double-click"
	request := benchkit.PaymentFor(1)
	gw := benchkit.StartGateway(t)
	db := pgtest.ShopClone(t, shop.Small)
	var lastBefore int64
	if err := db.QueryRow(context.Background(), "SELECT coalesce(max(id), 0) FROM payments").Scan(&lastBefore); err != nil {
		return fmt.Errorf("the payments before: %w", err)
	}
	gw.Hold()
	second, err := benchkit.StartSecondInstance(t, oneKeyPlan{Database: benchkit.DatabaseOf(t, db), GatewayURL: gw.URL(), Key: key, Request: request, Calls: callers / 2})
	if err != nil {
		return err
	}
	payments := newPayments(db, gw.Client())
	start := make(chan struct{})
	var returnedHere atomic.Int64
	results, errs, arrived, wait := benchkit.CallTogether(callers-callers/2, func() (shop.Payment, error) {
		<-start
		defer returnedHere.Add(1)
		return payments.Pay(context.Background(), key, request)
	})
	<-arrived
	if err := second.Go(); err != nil {
		return err
	}
	close(start)
	benchkit.ReleaseWhenAllArrived(gw, callers, func() int { return int(returnedHere.Load() + second.Events()) }, 500*time.Millisecond)
	wait()
	var theirs []callOutcome
	if err := second.Result(&theirs); err != nil {
		return err
	}
	outcomes := make([]callOutcome, 0, callers)
	for i := range results {
		outcomes = append(outcomes, outcomeOf(results[i], errs[i]))
	}
	outcomes = append(outcomes, theirs...)
	process := func(i int) string { // which process made call i
		if i < len(results) {
			return "this process"
		}
		return "the second process"
	}

	charges := gw.Charges()
	if len(charges) != 1 {
		err := fmt.Errorf("%d charges for %d calls with one key, at once, half of them in a second process: make it 1", len(charges), callers)
		if unkeyed := unkeyedCharges(gw); unkeyed > 0 {
			err = fmt.Errorf("%w; %d of them reached the gateway without an idempotency key, so it could not tell them from new payments", err, unkeyed)
		}
		return err
	}
	const paymentsAfter = `SELECT id FROM payments WHERE id > $1 ORDER BY id`
	rows, err := db.Query(context.Background(), paymentsAfter, lastBefore)
	if err != nil {
		return fmt.Errorf("the payments recorded: %w", err)
	}
	recorded, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("the payments recorded: %w", err)
	}
	if len(recorded) != 1 {
		byProcess := map[string]map[int64]bool{} // the payments the callers of each process got
		for i, o := range outcomes {
			if o.PaymentID != 0 && o.Err == "" {
				if byProcess[process(i)] == nil {
					byProcess[process(i)] = map[int64]bool{}
				}
				byProcess[process(i)][o.PaymentID] = true
			}
		}
		here, there := len(byProcess["this process"]), len(byProcess["the second process"])
		why := "one key, one row: see \"Idempotency\" in the lesson"
		switch {
		case here > 1 || there > 1:
			why = fmt.Sprintf("the callers in this process got %d different payments, those in the second %d: concurrent calls with one key each recorded a payment; %s", here, there, why)
		case here == 1 && there == 1:
			why = "the callers in each process got the one payment their process recorded, one per process: what stops one process from recording a key twice does not reach the other; " + why
		}
		return fmt.Errorf("%d payment rows for %d calls with one key, at once, half of them in a second process, and %d charge: %s",
			len(recorded), callers, len(charges), why)
	}
	paid := 0
	for i, o := range outcomes {
		switch {
		case o.DuplicateKey:
			return fmt.Errorf("a caller in %s got the database's duplicate key error (%s): a caller whose key is being paid gets the first call's payment, or an error saying it is in progress",
				process(i), o.Err)
		case o.Err != "":
			continue
		case o.PaymentID != recorded[0] || o.ChargeID != charges[0].ID:
			return fmt.Errorf("a caller in %s got payment %d charged as %q, but the table holds payment %d and the gateway made %q: one key, one payment",
				process(i), o.PaymentID, o.ChargeID, recorded[0], charges[0].ID)
		default:
			paid++
		}
	}
	if paid == 0 {
		return fmt.Errorf("none of %d calls with one key got its payment (the first error: %s); the call that pays returns it", callers, outcomes[0].Err)
	}
	// How many got which depends on the scheduler: not a figure to pin.
	t.Logf("%d calls with one key, at once, from two processes: 1 charge, 1 payment row; every caller got that payment, or an error (in progress)", callers)

	gw = benchkit.StartGateway(t)
	gw.FailNext(gatewaytest.Failure{Status: http.StatusInternalServerError, AfterCharge: true})
	lostReply := newPayments(pgtest.ShopClone(t, shop.Small), gw.Client())
	payment, err := lostReply.Pay(context.Background(), "lost-reply", benchkit.PaymentFor(2))
	if err != nil {
		return fmt.Errorf("a payment whose first reply was lost: %w", err)
	}
	if charges := len(gw.Charges()); charges != 1 {
		err := fmt.Errorf("%d charges for a payment whose first reply was lost, and was retried: make it 1", charges)
		if unkeyed := unkeyedCharges(gw); unkeyed > 0 {
			err = fmt.Errorf("%w; %d of them reached the gateway without an idempotency key, so it charged again instead of answering with the first charge", err, unkeyed)
		}
		return err
	}
	if payment.ChargeID != gw.Charges()[0].ID {
		return fmt.Errorf("the payment records charge %q, the gateway made %q", payment.ChargeID, gw.Charges()[0].ID)
	}
	t.Logf("a payment whose first reply was lost: %d requests, 1 charge", gw.Requests())
	return nil
}

// unkeyedCharges returns how many of gw's charges were asked without an
// idempotency key: charges the gateway could not recognise if they were
// asked again.
func unkeyedCharges(gw *gatewaytest.Server) int {
	n := 0
	for _, key := range gw.Keys() {
		if key == "" {
			n++
		}
	}
	return n
}

// someOf formats the first few of items.
func someOf(items []string) string {
	const few = 3
	if len(items) <= few {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:few], ", ") + fmt.Sprintf(" and %d more", len(items)-few)
}

func TestExercise09CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer { return newRetryingPayments(t, db, gw) })
	require.ErrorContains(t, err, "50 charges for 50 calls with one key")
	t.Log(err)
}

func TestExercise09CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		pay  newPayerFunc
		want string
	}{
		{"key merely forwarded to the gateway", func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return &keyForwardingPayments{db: db, gateway: gw}
		},
			"the callers in this process got 25 different payments, those in the second 25"},
		{"check, then insert", func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return &checkThenInsertPayments{db: db, gateway: gw}
		},
			"got the database's duplicate key error"},
		{"a lock per key in the process", func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return &keyLockedPayments{db: db, gateway: gw}
		},
			"one per process: what stops one process from recording a key twice does not reach the other"},
		{"singleflight in the process", func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return &coalescedPayments{db: db, gateway: gw}
		},
			"one per process: what stops one process from recording a key twice does not reach the other"},
		{"retries without the key", func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
			return &unkeyedRetryPayments{db: db, gateway: gw}
		},
			"2 charges for a payment whose first reply was lost, and was retried: make it 1; 2 of them reached the gateway without an idempotency key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise09(t, tc.pay)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise09CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) benchkit.Payer {
		return newFastRetryPayments(t, db, gw)
	}))
}

// keyForwardingPayments is a wrong answer to exercise 9: the starting code
// with the key passed on to the gateway. The gateway charges once per key,
// but every concurrent call records a payment of its own.
type keyForwardingPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	paid    sync.Map // key → shop.Payment
}

func (p *keyForwardingPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if paid, ok := p.paid.Load(key); ok {
		return paid.(shop.Payment), nil
	}
	var charge gateway.Charge
	var err error
	for range 3 {
		if charge, err = p.gateway.Charge(ctx, req, key); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, 'charged', $4) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	if err := p.db.QueryRow(ctx, insertPayment, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	p.paid.Store(key, payment)
	return payment, nil
}

// checkThenInsertPayments is a wrong answer to exercise 9: it looks for the
// key's payment, and when there is none, charges (with the key) and inserts.
// Concurrent calls all find none; the unique key keeps one row, and the
// others get the database's duplicate key error.
type checkThenInsertPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
}

func (p *checkThenInsertPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	const paymentOfKey = `SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE idempotency_key = $1`
	var payment shop.Payment
	err := p.db.QueryRow(ctx, paymentOfKey, key).Scan(&payment.ID, &payment.UserID, &payment.AmountCents, &payment.Currency, &payment.Status, &payment.ChargeID)
	if err == nil {
		return payment, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	var charge gateway.Charge
	for range 3 {
		if charge, err = p.gateway.Charge(ctx, req, key); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (idempotency_key, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, 'charged', $5) RETURNING id`
	payment = shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	if err := p.db.QueryRow(ctx, insertPayment, key, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	return payment, nil
}

// The wrong answers below are written from the lesson's "Why it breaks" as a
// trainee writes them: each holds inside one process, or forgets what a
// retry needs.

// payLocks and paidKeys are keyLockedPayments' memory, shared by every
// Payments of one process.
var (
	payLocks sync.Map // key → *sync.Mutex
	paidKeys sync.Map // key → shop.Payment
)

// keyLockedPayments is a wrong answer to exercise 9: a mutex per key, kept in
// a package variable, makes concurrent calls with one key wait for the first,
// which remembers its payment for them; the retries carry the key. It holds
// inside one process. A second server has its own mutexes and its own
// memory, and records the key's payment again.
type keyLockedPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
}

func (p *keyLockedPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	// The database's name in the memory's key only keeps one run of this
	// test (-count) from finding another's payments.
	remembered := p.db.Config().ConnConfig.Database + "/" + key
	lock, _ := payLocks.LoadOrStore(remembered, &sync.Mutex{})
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()
	if paid, ok := paidKeys.Load(remembered); ok {
		return paid.(shop.Payment), nil
	}
	payment, err := chargeAndInsert(ctx, p.db, p.gateway, key, req)
	if err != nil {
		return shop.Payment{}, err
	}
	paidKeys.Store(remembered, payment)
	return payment, nil
}

// coalescedPayments is a wrong answer to exercise 9: lesson 7's singleflight
// makes concurrent calls with one key share one payment, and a map remembers
// it for the calls after. Both live in the Payments value: a second server
// shares neither, and records the key's payment again.
type coalescedPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	flights singleflight.Group
	paid    sync.Map // key → shop.Payment
}

func (p *coalescedPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	payment, err, _ := p.flights.Do(key, func() (any, error) {
		if paid, ok := p.paid.Load(key); ok {
			return paid, nil
		}
		payment, err := chargeAndInsert(ctx, p.db, p.gateway, key, req)
		if err != nil {
			return nil, err
		}
		p.paid.Store(key, payment)
		return payment, nil
	})
	if err != nil {
		return shop.Payment{}, err
	}
	return payment.(shop.Payment), nil
}

// chargeAndInsert charges req with the key, trying three times, and inserts
// the payment, as the starting code records it.
func chargeAndInsert(ctx context.Context, db *pgxpool.Pool, gw *gateway.Client, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	var charge gateway.Charge
	var err error
	for range 3 {
		if charge, err = gw.Charge(ctx, req, key); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, 'charged', $4) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	if err := db.QueryRow(ctx, insertPayment, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	return payment, nil
}

// unkeyedRetryPayments is a wrong answer to exercise 9: the database decides
// which call pays (one insert wins the key), but the retry loop sends the
// charge without the key, so when the gateway charged and its reply was
// lost, the retry charges again.
type unkeyedRetryPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
}

func (p *unkeyedRetryPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	const claimKey = `
		INSERT INTO payments (idempotency_key, user_id, amount_cents, currency, status)
		VALUES ($1, $2, $3, $4, 'pending')
		ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentPending}
	err := p.db.QueryRow(ctx, claimKey, key, req.UserID, req.AmountCents, req.Currency).Scan(&payment.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		const paymentOfKey = `SELECT id, status, coalesce(charge_id, '') FROM payments WHERE user_id = $1 AND idempotency_key = $2`
		if err := p.db.QueryRow(ctx, paymentOfKey, req.UserID, key).Scan(&payment.ID, &payment.Status, &payment.ChargeID); err != nil {
			return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
		}
		if payment.Status != shop.PaymentCharged {
			return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, shop.ErrInProgress)
		}
		return payment, nil
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	var charge gateway.Charge
	for range 3 {
		if charge, err = p.gateway.Charge(ctx, req, ""); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const recordCharge = `UPDATE payments SET status = 'charged', charge_id = $2 WHERE id = $1`
	if _, err := p.db.Exec(ctx, recordCharge, payment.ID, charge.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	payment.Status, payment.ChargeID = shop.PaymentCharged, charge.ID
	return payment, nil
}
