package connections

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	naive "works-vs-scales/naive/connections"
	scalable "works-vs-scales/scalable/connections"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Lesson 13: connections. Pair 1, a connection per request or a pool; pair
// 2, the pool's size; pair 3, a connection held while the payment gateway
// works; pair 4, many instances' pools against one server's connections,
// and PgBouncer between them.

// userShop is what both sides' Shop answer; spend is flattened to two
// numbers, since each side has its own Spend type.
type userShop interface {
	GetUser(ctx context.Context, id int64) (shop.User, error)
	Connects() int64
	Close()
}

type connsImpl struct {
	name  string
	new   func(ctx context.Context, cfg *pgx.ConnConfig, maxConns int32) (userShop, error)
	spend func(s userShop, ctx context.Context, userID int64) ([2]int64, error)
}

func connsImpls() []connsImpl {
	return []connsImpl{
		{
			name: "naive",
			new: func(ctx context.Context, cfg *pgx.ConnConfig, maxConns int32) (userShop, error) {
				return naive.New(ctx, naive.Config{Conn: cfg, MaxConns: maxConns})
			},
			spend: func(s userShop, ctx context.Context, userID int64) ([2]int64, error) {
				spend, err := s.(*naive.Shop).UserSpend(ctx, userID)
				return [2]int64{spend.Orders, spend.Cents}, err
			},
		},
		{
			name: "scalable",
			new: func(ctx context.Context, cfg *pgx.ConnConfig, maxConns int32) (userShop, error) {
				return scalable.New(ctx, scalable.Config{Conn: cfg, MaxConns: maxConns})
			},
			spend: func(s userShop, ctx context.Context, userID int64) ([2]int64, error) {
				spend, err := s.(*scalable.Shop).UserSpend(ctx, userID)
				return [2]int64{spend.Orders, spend.Cents}, err
			},
		},
	}
}

// openShop returns impl's Shop on cfg's database, closed when tb ends.
func openShop(tb testing.TB, impl connsImpl, cfg *pgx.ConnConfig, maxConns int32) userShop {
	tb.Helper()
	var s userShop
	tb.Cleanup(func() {
		if s != nil {
			s.Close()
		}
	})
	s, err := impl.new(context.Background(), cfg, maxConns)
	if err != nil {
		tb.Fatalf("open %s shop: %v", impl.name, err)
	}
	return s
}

// TestConnsAgree: both Shops answer the same, for users with no orders, a
// few and many, and refuse unknown users the same way.
func TestConnsAgree(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	cfg := db.Config().ConnConfig
	ctx := context.Background()
	zero, _ := shop.Small.UserWithOrders(0)
	users := append([]int64{1, zero}, shop.Small.EdgeCaseUsers()...)
	answers := map[string][]any{}
	for _, impl := range connsImpls() {
		s := openShop(t, impl, cfg, 4)
		for _, id := range users {
			u, err := s.GetUser(ctx, id)
			require.NoError(t, err, impl.name)
			require.Equal(t, id, u.ID)
			require.Equal(t, id%shop.NoPhoneEvery == 0, u.Phone == nil, "%s: user %d's phone, NULL for every %dth", impl.name, id, shop.NoPhoneEvery)
			spend, err := impl.spend(s, ctx, id)
			require.NoError(t, err, impl.name)
			answers[impl.name] = append(answers[impl.name], u, spend)
		}
		for _, id := range []int64{0, -1, 1 << 62, int64(shop.Small.Users()) + 1} {
			_, err := s.GetUser(ctx, id)
			require.ErrorIs(t, err, shop.ErrUserNotFound, "%s: user %d", impl.name, id)
			_, err = impl.spend(s, ctx, id)
			require.ErrorIs(t, err, shop.ErrUserNotFound, "%s: spend of user %d", impl.name, id)
		}
	}
	require.Equal(t, answers["naive"], answers["scalable"])
	require.Equal(t, [2]int64{0, 0}, answers["naive"][3], "a user with no orders spent nothing")
}

// TestConnsRefuseBadConfig: no database, a config pgx did not make, a
// negative pool, no gateway: an error wrapping shop.ErrInvalidConfig, on
// both sides.
func TestConnsRefuseBadConfig(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig("postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	for _, impl := range connsImpls() {
		_, err := impl.new(ctx, nil, 1)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, impl.name)
		_, err = impl.new(ctx, cfg, -1)
		require.ErrorIs(t, err, shop.ErrInvalidConfig, impl.name)
		_, err = impl.new(ctx, &pgx.ConnConfig{}, 1) // not made by ParseConfig: pgx panics on it
		require.ErrorIs(t, err, shop.ErrInvalidConfig, impl.name)
	}
	_, err = naive.NewPayments(nil, instantGateway{})
	require.ErrorIs(t, err, shop.ErrInvalidConfig)
	_, err = scalable.NewPayments(nil, instantGateway{})
	require.ErrorIs(t, err, shop.ErrInvalidConfig)
	pool, err := pgxpool.NewWithConfig(ctx, mustPoolConfig(t, cfg)) // connects lazily: nothing listens on port 1
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = naive.NewPayments(pool, nil)
	require.ErrorIs(t, err, shop.ErrInvalidConfig)
	_, err = scalable.NewPayments(pool, nil)
	require.ErrorIs(t, err, shop.ErrInvalidConfig)
}

func mustPoolConfig(tb testing.TB, cfg *pgx.ConnConfig) *pgxpool.Config {
	tb.Helper()
	poolConfig, err := pgxpool.ParseConfig("")
	require.NoError(tb, err)
	poolConfig.ConnConfig = cfg.Copy()
	return poolConfig
}

// TestConnectsPerRequest: 20 requests one after the other, then 8 at once:
// naive connects for each, 28 times; the pool connects once, then at most
// its size.
func TestConnectsPerRequest(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	const poolSize = 4
	want := map[string]func(connects int64) bool{
		"naive":    func(connects int64) bool { return connects == 28 },
		"scalable": func(connects int64) bool { return connects >= 1 && connects <= poolSize },
	}
	for _, impl := range connsImpls() {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			s := openShop(t, impl, db.Config().ConnConfig, poolSize)
			for i := range 20 {
				_, err := s.GetUser(ctx, int64(i+1))
				require.NoError(t, err)
			}
			if impl.name == "scalable" {
				require.EqualValues(t, 1, s.Connects(), "20 requests, one after the other, on one connection")
			}
			var calls sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				calls.Go(func() { _, errs[i] = s.GetUser(ctx, int64(i+1)) })
			}
			calls.Wait()
			require.NoError(t, errors.Join(errs...))
			require.True(t, want[impl.name](s.Connects()), "%s connected %d times", impl.name, s.Connects())
		})
	}
}

// instantGateway charges at once, every time, with the key as the charge's id.
type instantGateway struct{}

func (instantGateway) Charge(ctx context.Context, req gateway.ChargeRequest, key string) (gateway.Charge, error) {
	return gateway.Charge{ID: "ch_" + key, ChargeRequest: req}, nil
}

// refusingGateway refuses every charge, as a declined card is: a 402.
type refusingGateway struct{ calls atomic.Int64 }

func (g *refusingGateway) Charge(ctx context.Context, req gateway.ChargeRequest, key string) (gateway.Charge, error) {
	g.calls.Add(1)
	return gateway.Charge{}, &gateway.Error{StatusCode: 402, Message: "card declined"}
}

// heldGateway holds every charge until release is closed: the test decides
// when the gateway answers. entered receives once per charge that arrives.
type heldGateway struct {
	entered     chan struct{}
	release     chan struct{}
	releaseOnce func() // closes release, once
}

func newHeldGateway(tb testing.TB, capacity int) *heldGateway {
	g := &heldGateway{entered: make(chan struct{}, capacity), release: make(chan struct{})}
	var once sync.Once
	tb.Cleanup(func() { once.Do(func() { close(g.release) }) }) // no charge outlives the test
	g.releaseOnce = func() { once.Do(func() { close(g.release) }) }
	return g
}

func (g *heldGateway) Charge(ctx context.Context, req gateway.ChargeRequest, key string) (gateway.Charge, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return gateway.Charge{ID: "ch_" + key, ChargeRequest: req}, nil
	case <-ctx.Done():
		return gateway.Charge{}, ctx.Err()
	}
}

// sleepyGateway takes delay to charge, as a real gateway takes tens or
// hundreds of milliseconds: for benchmarks only.
type sleepyGateway struct{ delay time.Duration }

func (g sleepyGateway) Charge(ctx context.Context, req gateway.ChargeRequest, key string) (gateway.Charge, error) {
	timer := time.NewTimer(g.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return gateway.Charge{ID: "ch_" + key, ChargeRequest: req}, nil
	case <-ctx.Done():
		return gateway.Charge{}, ctx.Err()
	}
}

type slowPayer interface {
	Pay(ctx context.Context, userID, amountCents int64) (shop.Payment, error)
}

type payImpl struct {
	name string
	new  func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error)
}

func payImpls() []payImpl {
	return []payImpl{
		{"naive", func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error) {
			return naive.NewPayments(db, gw)
		}},
		{"scalable", func(db *pgxpool.Pool, gw naive.Charger) (slowPayer, error) {
			return scalable.NewPayments(db, gw)
		}},
	}
}

// paymentRow returns the status and charge id of a payment's row, or "none".
func paymentRow(tb testing.TB, db *pgxpool.Pool, id int64) (status, chargeID string) {
	tb.Helper()
	const row = `SELECT status, coalesce(charge_id, '') FROM payments WHERE id = $1`
	err := db.QueryRow(context.Background(), row, id).Scan(&status, &chargeID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "none", ""
	}
	require.NoError(tb, err)
	return status, chargeID
}

func countPayments(tb testing.TB, db *pgxpool.Pool, status string) int {
	tb.Helper()
	var n int
	require.NoError(tb, db.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE status = $1`, status).Scan(&n))
	return n
}

// TestPayAgree: both sides record a charged payment the same way, charge
// nothing for hostile input, and record no charge the gateway refused.
func TestPayAgree(t *testing.T) {
	ctx := context.Background()
	for _, impl := range payImpls() {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			payments, err := impl.new(db, instantGateway{})
			require.NoError(t, err)
			payment, err := payments.Pay(ctx, 7, 1250)
			require.NoError(t, err)
			require.Equal(t, shop.Payment{ID: payment.ID, UserID: 7, AmountCents: 1250, Currency: "EUR", Status: shop.PaymentCharged,
				ChargeID: fmt.Sprintf("ch_payment-%d", payment.ID)}, payment)
			status, chargeID := paymentRow(t, db, payment.ID)
			require.Equal(t, shop.PaymentCharged, status)
			require.Equal(t, payment.ChargeID, chargeID)

			refusing := &refusingGateway{}
			payments, err = impl.new(db, refusing)
			require.NoError(t, err)
			for _, amount := range []int64{0, -1, -1 << 63} {
				_, err := payments.Pay(ctx, 7, amount)
				require.ErrorIs(t, err, shop.ErrInvalidQuantity, "amount %d", amount)
			}
			for _, user := range []int64{0, -1, 1 << 62} {
				_, err := payments.Pay(ctx, user, 100)
				require.ErrorIs(t, err, shop.ErrUserNotFound, "user %d", user)
			}
			require.Zero(t, refusing.calls.Load(), "no charge asked for hostile input")
			_, err = payments.Pay(ctx, 7, 990)
			var gwErr *gateway.Error
			require.ErrorAs(t, err, &gwErr)
			require.Equal(t, 1, benchkit.PaymentStatuses(t, db)[shop.PaymentCharged], "the refused payment is not charged")
		})
	}
}

// slowPayPoolSize is the pool the slow-payment tests share between payments
// and the fast query.
const slowPayPoolSize = 4

// TestSlowPaymentsHoldConnections: with the pool's 4 connections' worth of
// payments inside the gateway, naive's transactions hold all 4, and a fast
// query on the same pool cannot get one (its acquire is canceled at its
// deadline); scalable's hold none, and the query runs at once. When the
// gateway answers, every payment of both is charged.
func TestSlowPaymentsHoldConnections(t *testing.T) {
	for _, impl := range payImpls() {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			pool := benchkit.SharedPool(t, db, slowPayPoolSize)
			held := newHeldGateway(t, slowPayPoolSize)
			payments, err := impl.new(pool, held)
			require.NoError(t, err)
			waited, fastErr, payErrs := slowPaymentsAndAFastQuery(t, pool, payments, held)
			require.NoError(t, errors.Join(payErrs...))
			require.Equal(t, slowPayPoolSize, benchkit.PaymentStatuses(t, db)[shop.PaymentCharged])
			if impl.name == "naive" {
				require.ErrorIs(t, fastErr, context.DeadlineExceeded, "the fast query found no connection")
				require.EqualValues(t, 1, waited.canceledAcquires)
				require.EqualValues(t, slowPayPoolSize, waited.acquiredWhileHeld)
				return
			}
			require.NoError(t, fastErr)
			require.Zero(t, waited.canceledAcquires)
			require.Zero(t, waited.emptyAcquires, "the fast query found an idle connection")
			require.Zero(t, waited.acquiredWhileHeld)
		})
	}
}

// poolWhileHeld is what a pool's statistics said while the gateway held its
// payments.
type poolWhileHeld struct {
	acquiredWhileHeld int32 // connections in use
	emptyAcquires     int64 // acquires that waited for a connection
	canceledAcquires  int64 // acquires that gave up waiting
}

// fastQueryDeadline is how long the fast query waits when the payments in
// the gateway hold every connection of the pool: it can never get one, so
// the deadline only says how soon it gives up. With a connection to take, it
// waits up to fastQueryPatience, which no machine, however busy, needs for
// one query: that it succeeded is the verdict, not how fast.
const (
	fastQueryDeadline = 500 * time.Millisecond
	fastQueryPatience = 30 * time.Second
)

// slowPaymentsAndAFastQuery starts slowPayPoolSize payments, waits until all
// are inside the held gateway, reads the pool's statistics and runs one fast
// query (with fastQueryDeadline if every connection is held, fastQueryPatience
// if not), then lets the gateway answer and returns the payments' errors.
func slowPaymentsAndAFastQuery(t *testing.T, pool *pgxpool.Pool, payments slowPayer, held *heldGateway) (poolWhileHeld, error, []error) {
	t.Helper()
	ctx := context.Background()
	payErrs := make([]error, slowPayPoolSize)
	var pays sync.WaitGroup
	t.Cleanup(pays.Wait) // registered before the gateway's release: runs after it
	for i := range payErrs {
		pays.Go(func() { _, payErrs[i] = payments.Pay(ctx, int64(i+1), 100) })
	}
	for range slowPayPoolSize {
		<-held.entered
	}
	before := pool.Stat()
	var seen poolWhileHeld
	seen.acquiredWhileHeld = before.AcquiredConns()
	patience := fastQueryPatience
	if seen.acquiredWhileHeld >= pool.Config().MaxConns {
		patience = fastQueryDeadline
	}
	fastCtx, cancel := context.WithTimeout(ctx, patience)
	var name string
	fastErr := pool.QueryRow(fastCtx, `SELECT name FROM users WHERE id = 1`).Scan(&name)
	cancel()
	after := pool.Stat()
	seen.emptyAcquires = after.EmptyAcquireCount() - before.EmptyAcquireCount()
	seen.canceledAcquires = after.CanceledAcquireCount() - before.CanceledAcquireCount()
	held.releaseOnce()
	pays.Wait()
	return seen, fastErr, payErrs
}

// connectionLimit is the connections the test's role may open on the
// server, and instances × instancePool the connections its instances want.
const (
	connectionLimit = 8
	instances       = 4
	instancePool    = 4
	bouncerPool     = 3
)

// appRole copies the shop, creates a login role that may open
// connectionLimit connections and read the copy's tables, and returns the
// copy and its connection config as that role. The harness drops the role
// when the test ends, before the copy; one left by a killed run is dropped
// by the next run, as its databases are.
func appRole(t *testing.T) (*pgxpool.Pool, *pgx.ConnConfig) {
	t.Helper()
	db := pgtest.ShopClone(t, shop.Small)
	return db, pgtest.LoginRole(t, db, connectionLimit)
}

// backendsOf returns how many server processes the role has on database.
func backendsOf(t *testing.T, observer *pgxpool.Pool, database, role string) int {
	t.Helper()
	var n int
	const backends = `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2`
	require.NoError(t, observer.QueryRow(context.Background(), backends, database, role).Scan(&n))
	return n
}

// isTooManyConnections reports whether err is the server refusing a
// connection: SQLSTATE 53300, too_many_connections, for max_connections
// ("sorry, too many clients already") and a role's CONNECTION LIMIT alike.
func isTooManyConnections(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53300"
}

// manyInstances runs instances Shops of instancePool connections on cfg, each
// serving instancePool requests at once while db's users table is locked, so
// that every request that has a connection holds it. It waits until every
// request is either refused or holding a connection waiting for the lock,
// reads the role's backends, then releases the lock and returns the requests'
// errors and the backends seen.
//
// Through PgBouncer (bouncer true), only the requests on its bouncerPool
// server connections reach the lock; the others wait in PgBouncer, and none
// is refused.
func manyInstances(t *testing.T, db *pgxpool.Pool, cfg *pgx.ConnConfig, bouncer bool) (errs []error, backends int) {
	t.Helper()
	ctx := context.Background()
	shops := make([]userShop, instances)
	for i := range shops {
		shops[i] = openShop(t, connsImpls()[1], cfg, instancePool)
	}
	requests := instances * instancePool
	errs = make([]error, requests)
	var refused atomic.Int64
	var calls sync.WaitGroup
	t.Cleanup(calls.Wait) // registered before the lock's release: runs after it
	release := benchkit.LockTable(t, db, "users", "ACCESS EXCLUSIVE")
	for i := range errs {
		calls.Go(func() {
			_, errs[i] = shops[i%instances].GetUser(ctx, int64(i+1))
			if errs[i] != nil {
				refused.Add(1)
			}
		})
	}
	const waitersQuery = `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND wait_event_type = 'Lock'`
	observer := pgtest.Shop(t, shop.Small)
	var waiting int
	var lastErr error
	ok := assert.Eventually(t, func() bool {
		lastErr = observer.QueryRow(ctx, waitersQuery, cfg.Database, cfg.User).Scan(&waiting)
		if bouncer {
			return lastErr == nil && waiting == bouncerPool
		}
		return lastErr == nil && waiting+int(refused.Load()) == requests
	}, 30*time.Second, 5*time.Millisecond)
	if !ok {
		t.Fatalf("waiting for every request to hold a connection or be refused: %d waiting, %d refused, last error %v", waiting, refused.Load(), lastErr)
	}
	backends = backendsOf(t, observer, cfg.Database, cfg.User)
	release()
	calls.Wait()
	return errs, backends
}

// TestManyInstancesExceedTheServersConnections: 4 instances with pools of 4
// want 16 connections of a role the server allows 8 (a role's CONNECTION
// LIMIT stands in for max_connections, which other users of the server
// share): connected straight, at most 8 requests are served and the rest are
// refused with SQLSTATE 53300. Through PgBouncer, pooling 3 server
// connections, all 16 are served, on 3 server processes.
func TestManyInstancesExceedTheServersConnections(t *testing.T) {
	t.Run("through=direct", func(t *testing.T) {
		db, cfg := appRole(t)
		errs, backends := manyInstances(t, db, cfg, false)
		refused := 0
		for _, err := range errs {
			if err != nil {
				require.True(t, isTooManyConnections(err), "want SQLSTATE 53300, got %v", err)
				refused++
			}
		}
		require.GreaterOrEqual(t, refused, instances*instancePool-connectionLimit, "16 wanted, 8 allowed")
		require.LessOrEqual(t, backends, connectionLimit)
		require.Equal(t, instances*instancePool-refused, backends, "every request served held a server process")
	})
	t.Run("through=pgbouncer", func(t *testing.T) {
		db, cfg := appRole(t)
		through := pgtest.PgBouncer(t, cfg, pgtest.PgBouncerConfig{PoolSize: bouncerPool})
		errs, backends := manyInstances(t, db, through, true)
		require.NoError(t, errors.Join(errs...), "every request served")
		require.Equal(t, bouncerPool, backends, "on PgBouncer's server connections only")
		pools, err := pgtest.PgBouncerAdmin(context.Background(), through, "SHOW POOLS")
		require.NoError(t, err)
		for _, pool := range pools {
			if pool["database"] == cfg.Database {
				require.Equal(t, "0", pool["cl_waiting"], "no client left waiting")
			}
		}
	})
}

// TestConnsRolesOfEndedRunsAreReclaimed: a role belongs to the server, not
// to a copy of the shop, so a run killed before its cleanups (a -timeout
// panic, SIGKILL) would leave the role of TestManyInstancesExceedTheServersConnections
// behind for good. The next run drops it, as it drops the dead run's
// databases, once the run's lock shows it gone; a live run's role stays.
func TestConnsRolesOfEndedRunsAreReclaimed(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	live := pgtest.LoginRole(t, db, 1)
	run := regexp.MustCompile(`run_[0-9a-f]{8}_role_`).FindString(live.User)
	require.NotEmpty(t, run, "role %s: named after its run", live.User)
	var id [4]byte
	rand.Read(id[:]) // a run nobody holds the lock of: one that has ended
	dead := strings.Replace(live.User, run, "run_"+hex.EncodeToString(id[:])+"_role_", 1)
	t.Cleanup(func() { // registered before the role exists, in case reclaiming fails
		if _, err := db.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{dead}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", dead, err)
		}
	})
	_, err := db.Exec(ctx, "CREATE ROLE "+pgx.Identifier{dead}.Sanitize()+" LOGIN CONNECTION LIMIT 1")
	require.NoError(t, err)

	verdicts, err := pgtest.DropDatabases(ctx, pgtest.ServerURL(t), pgtest.DropOptions{})
	require.NoError(t, err)
	exists := func(role string) bool {
		var ok bool
		require.NoError(t, db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, role).Scan(&ok))
		return ok
	}
	assert.False(t, exists(dead), "the role of a run that has ended is dropped")
	assert.True(t, exists(live.User), "the role of this live run is kept")
	said := make(map[string]pgtest.Verdict)
	for _, v := range verdicts {
		said[v.Name] = v
	}
	assert.True(t, said["role "+dead].Dropped, "%+v", said["role "+dead])
	assert.False(t, said["role "+live.User].Dropped, "%+v", said["role "+live.User])
}

// TestPreparedStatementsBehindPgBouncer: in transaction pooling, a client's
// next transaction may run on another server connection, and two clients'
// on the same one. pgx's default exec mode prepares each statement once per
// client connection, under a name made from its SQL: the second client to
// run a statement on a server connection where the first prepared it fails
// with SQLSTATE 42P05 (prepared statement already exists), and so does the
// naive Shop, whose every request is a new client. The exec modes that leave
// no prepared statement behind (CacheDescribe, scalable's; Exec) work.
// PgBouncer 1.21 and later can also track prepared statements itself
// (max_prepared_statements); this machine's is 1.18.
func TestPreparedStatementsBehindPgBouncer(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	through := pgtest.PgBouncer(t, db.Config().ConnConfig, pgtest.PgBouncerConfig{PoolSize: 1})
	const getUser = `SELECT name FROM users WHERE id = $1`

	twoClients := func(t *testing.T, mode pgx.QueryExecMode) error {
		cfg := mustPoolConfig(t, through)
		cfg.ConnConfig.DefaultQueryExecMode = mode
		cfg.MaxConns = 2
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		first, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer first.Release()
		second, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer second.Release()
		var name string
		require.NoError(t, first.QueryRow(ctx, getUser, 1).Scan(&name), "the first client prepares it")
		require.NoError(t, first.QueryRow(ctx, getUser, 2).Scan(&name), "and runs it again")
		return second.QueryRow(ctx, getUser, 3).Scan(&name)
	}
	alreadyExists := func(err error) bool {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "42P05" // duplicate_prepared_statement
	}

	t.Run("mode=default", func(t *testing.T) {
		err := twoClients(t, pgx.QueryExecModeCacheStatement)
		require.True(t, alreadyExists(err), "want SQLSTATE 42P05, got %v", err)
	})
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec} {
		t.Run(benchkit.Name("mode", mode), func(t *testing.T) {
			require.NoError(t, twoClients(t, mode))
		})
	}
	t.Run("shop=naive", func(t *testing.T) {
		s := openShop(t, connsImpls()[0], through, 0)
		_, err := s.GetUser(ctx, 1)
		require.NoError(t, err)
		_, err = s.GetUser(ctx, 2)
		require.True(t, alreadyExists(err), "the second request's new connection prepares it again: want SQLSTATE 42P05, got %v", err)
	})
	t.Run("shop=scalable", func(t *testing.T) {
		s := openShop(t, connsImpls()[1], through, 2)
		var calls sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			calls.Go(func() { _, errs[i] = s.GetUser(ctx, int64(i+1)) })
		}
		calls.Wait()
		require.NoError(t, errors.Join(errs...))
	})
}

// TestPgBouncerReachesTheServerThroughTheTestsProxy: the PgBouncer the
// harness starts reaches the server the way the config it is given does:
// through the test's proxy when the config names one, as WORKSHOP_RTT's does,
// so that its server connections pay the round trip a pool connecting
// straight pays. With the proxy down, a query through PgBouncer fails; a
// PgBouncer that went around the proxy (as the container path's once did,
// straight to the PostgreSQL container) would answer it.
func TestPgBouncerReachesTheServerThroughTheTestsProxy(t *testing.T) {
	if os.Getenv(workshopenv.PgBouncerURL) != "" {
		t.Skipf("the PgBouncer of %s reaches the server its own way: the harness can add no latency behind it", workshopenv.PgBouncerURL)
	}
	db, proxy := pgtest.ShopCloneWithFaults(t, shop.Small)
	through := pgtest.PgBouncer(t, db.Config().ConnConfig, pgtest.PgBouncerConfig{PoolSize: 1})
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, through)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	var name string
	require.NoError(t, conn.QueryRow(ctx, `SELECT name FROM users WHERE id = 1`).Scan(&name), "through PgBouncer, the proxy up")
	proxy.Down() // refuses new connections and resets PgBouncer's server connection, if it goes through the proxy
	t.Cleanup(proxy.Up)
	down, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err = conn.QueryRow(down, `SELECT name FROM users WHERE id = 2`).Scan(&name)
	require.Error(t, err, "with the proxy down, PgBouncer answered: it reaches the server around the proxy, and WORKSHOP_RTT would not apply behind it")
}

// BenchmarkConnect: callers requests at once, each getting a user by id,
// on a connection of its own (naive) or one of a pool of 10 (scalable).
// With WORKSHOP_RTT, connecting pays its round trips too.
func BenchmarkConnect(b *testing.B) {
	db := pgtest.Shop(b, shop.Small)
	ctx := context.Background()
	size, label := benchkit.ClampToBudget(b, 10) // a room's budget: a smaller pool, labelled
	for _, impl := range connsImpls() {
		for _, callers := range benchkit.Ladder(1, 100) {
			b.Run(fmt.Sprintf("impl=%s/callers=%d%s", impl.name, callers, label), func(b *testing.B) {
				s := openShop(b, impl, db.Config().ConnConfig, size)
				if _, err := s.GetUser(ctx, 1); err != nil { // the pool's first connection, outside the timing
					b.Fatal(err)
				}
				connectsBefore := s.Connects()
				var latencies []time.Duration
				for b.Loop() {
					took, errs := make([]time.Duration, callers), make([]error, callers)
					var wg sync.WaitGroup
					for i := range callers {
						wg.Go(func() {
							start := time.Now()
							_, errs[i] = s.GetUser(ctx, int64(i+1))
							took[i] = time.Since(start)
						})
					}
					wg.Wait()
					if err := errors.Join(errs...); err != nil {
						b.Fatal(err)
					}
					latencies = append(latencies, took...)
				}
				elapsed := b.Elapsed()
				benchkit.ReportLatencies(b, latencies)
				b.ReportMetric(float64(s.Connects()-connectsBefore)/float64(b.N), "connects/op")
				b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "requests/s")
			})
		}
	}
}

// poolSizeCallers is the offered load of BenchmarkPoolSize: callers with a
// request each, all at once.
const poolSizeCallers = 64

// BenchmarkPoolSize: 64 requests at once, each what a user spent (a query
// of about a millisecond on the server), on pools of 1 to 64
// connections. busy-conns is Little's law, L = λW: requests per second times
// the mean time a request held its connection.
func BenchmarkPoolSize(b *testing.B) {
	db := pgtest.Shop(b, shop.Small)
	ctx := context.Background()
	users := make([]int64, poolSizeCallers)
	for i := range users {
		users[i] = int64(11 + i) // between 135 and 900 orders each: the same mix at every size
	}
	sizes := []int32{1, 2, 4, 8, 16, 32, 64}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("impl=pool/conns=%d", size), func(b *testing.B) {
			benchkit.SkipAboveBudget(b, size) // a point of the sweep: skipped, not measured under another size's name
			s, err := scalable.New(ctx, scalable.Config{Conn: db.Config().ConnConfig, MaxConns: size})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(s.Close)
			warmPool(b, s, size)
			before := s.Stat()
			var latencies []time.Duration
			for b.Loop() {
				took, errs := make([]time.Duration, len(users)), make([]error, len(users))
				var wg sync.WaitGroup
				for i, user := range users {
					wg.Go(func() {
						start := time.Now()
						_, errs[i] = s.UserSpend(ctx, user)
						took[i] = time.Since(start)
					})
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
				latencies = append(latencies, took...)
			}
			elapsed := b.Elapsed()
			after := s.Stat()
			waited := after.AcquireDuration() - before.AcquireDuration()
			var total time.Duration
			for _, l := range latencies {
				total += l
			}
			throughput := float64(len(latencies)) / elapsed.Seconds()
			held := (total - waited).Seconds() / float64(len(latencies)) // mean time with a connection
			benchkit.ReportLatencies(b, latencies)
			b.ReportMetric(throughput, "requests/s")
			b.ReportMetric(throughput*held, "busy-conns")
			b.ReportMetric(waited.Seconds()*1000/float64(len(latencies)), "wait-ms/request")
		})
	}
}

// warmPool opens size connections of s's pool, and has each run the
// benchmark's statement once, before anything is timed.
func warmPool(b *testing.B, s *scalable.Shop, size int32) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make([]error, size)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.UserSpend(context.Background(), int64(i+1)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}

// slowPayDelay is how long the benchmark's gateway takes to charge.
const slowPayDelay = 20 * time.Millisecond

// BenchmarkFastQueryDuringSlowPayments: slow payments in flight, each 20 ms
// in the gateway, on a pool of 10 connections; each operation is one fast
// query (a user by id) on the same pool. naive's payments hold their
// connection in the gateway, scalable's do not.
func BenchmarkFastQueryDuringSlowPayments(b *testing.B) {
	db := pgtest.ShopClone(b, shop.Small)
	size, label := benchkit.ClampToBudget(b, 10) // a room's budget: a smaller pool, labelled
	for _, impl := range payImpls() {
		for _, slow := range benchkit.Ladder(1, 100) {
			b.Run(fmt.Sprintf("impl=%s/slow=%d%s", impl.name, slow, label), func(b *testing.B) {
				pool := benchkit.SharedPool(b, db, size)
				payments, err := impl.new(pool, sleepyGateway{slowPayDelay})
				if err != nil {
					b.Fatal(err)
				}
				ctx, stop := context.WithCancel(context.Background())
				var paid atomic.Int64
				var load sync.WaitGroup
				b.Cleanup(load.Wait) // registered before stop: runs after it
				b.Cleanup(stop)
				payErrs := make([]error, slow)
				for i := range slow {
					load.Go(func() {
						for ctx.Err() == nil {
							if _, err := payments.Pay(ctx, int64(i%100+1), 100); err != nil {
								if ctx.Err() == nil {
									payErrs[i] = err
								}
								return
							}
							paid.Add(1)
						}
					})
				}
				var latencies []time.Duration
				var name string
				paidBefore := paid.Load()
				for b.Loop() {
					start := time.Now()
					if err := pool.QueryRow(context.Background(), `SELECT name FROM users WHERE id = 1`).Scan(&name); err != nil {
						b.Fatal(err)
					}
					latencies = append(latencies, time.Since(start))
				}
				elapsed := b.Elapsed()
				paidDuring := paid.Load() - paidBefore
				stop()
				load.Wait()
				if err := errors.Join(payErrs...); err != nil {
					b.Fatal(err)
				}
				benchkit.ReportLatencies(b, latencies)
				b.ReportMetric(float64(paidDuring)/elapsed.Seconds(), "payments/s")
			})
		}
	}
}
