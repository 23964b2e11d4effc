package races

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/races"
	scalable "works-vs-scales/scalable/races"
	"works-vs-scales/shop"
)

// Lesson 12's exercise, in exercises/races: a coupon redeemed once per user.
// Its check is here, with the proof that it fails on the starting point and on
// the wrong answers people write first, and passes on right ones; the trainee's
// run of it, TestExercise12, is in exercise_test.go, behind the exercise tag.

type couponRedeemer interface {
	Redeem(ctx context.Context, userID int64, code string) error
}

type createCouponTableFunc func(ctx context.Context, db *pgxpool.Pool) error

const (
	couponServers  = 4  // Coupons the check makes in its own process, as four servers would
	couponPool     = 8  // the connections those four share
	couponRequests = 50 // redemptions of one coupon by one user, at once, through the four
	otherRequests  = 10 // the same, at once, through one Coupons in a second process
	otherPool      = 2  // the second process's connections: one request in the database is enough
	// couponHold is the advisory lock every redemption's insert waits for
	// while the check holds it: a trigger the check adds takes it, shared,
	// after the row is inserted and before it is committed.
	couponHold = 12
	// heldAtOnce is how many requests must be held at once before the check
	// lets them go: two that both got past whatever decides are enough for
	// two redemptions.
	heldAtOnce = 2
)

// newCouponsFunc makes the coupons of one server on db, as NewCoupons does.
type newCouponsFunc func(db *pgxpool.Pool) (couponRedeemer, error)

// otherDatabaseEnv, in the second process of checkExercise12, is the URL of
// the database the check made.
const otherDatabaseEnv = "WVS_EXERCISE12_DATABASE"

// otherMark starts the line on which the second process reports what its
// requests got.
const otherMark = "exercise 12, the second process: "

// otherReport is what the second process's requests got.
type otherReport struct {
	Redeemed int      // returned nil
	Already  int      // returned shop.ErrAlreadyRedeemed
	Failed   []string // returned anything else
}

// checkExercise12 says what is still wrong with an answer to lesson 12's
// exercise, or nil when it is done: one at a time, a user redeems a coupon
// once; at once, 50 requests through four servers in the check's process and
// 10 through a server in a second process (the test binary again, run by the
// check), all for one user and one coupon, redeem it once.
//
// "At once" is made exact with a held lock rather than left to the
// scheduler: a trigger the check adds to coupon_redemptions makes every
// insert wait, after its row is written and before it commits, for an
// advisory lock the check holds until two requests wait for a lock (or until
// every request has either returned or is waiting). By then two requests
// have each done whatever they do before writing, and neither has
// committed: a check and a write that are two steps, or a statement no
// unique key backs, or a lock held within one process only, redeems twice,
// every time.
func checkExercise12(t *testing.T, createTable createCouponTableFunc, newCoupons newCouponsFunc) error {
	if benchkit.InChild(t) {
		redeemInTheSecondProcess(t, newCoupons) // does not return
	}
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	if err := createTable(ctx, db); err != nil {
		return fmt.Errorf("your CreateCouponTable: %w", err)
	}
	benchkit.CheckConns(t, couponPool+otherPool) // a room's budget (WORKSHOP_MAX_CONNS): the second process's pool too
	pool := benchkit.CheckPool(t, db, couponPool)
	servers := make([]couponRedeemer, couponServers)
	for i := range servers {
		var err error
		if servers[i], err = newCoupons(pool); err != nil {
			return fmt.Errorf("your NewCoupons: %w", err)
		}
	}

	if err := servers[0].Redeem(ctx, 1, "WELCOME"); err != nil {
		return fmt.Errorf("user 1 redeeming WELCOME: %w", err)
	}
	if err := servers[1].Redeem(ctx, 1, "WELCOME"); !errors.Is(err, shop.ErrAlreadyRedeemed) {
		return fmt.Errorf("user 1 redeeming WELCOME again: got %v, want shop.ErrAlreadyRedeemed", err)
	}
	if err := servers[0].Redeem(ctx, 2, "WELCOME"); err != nil {
		return fmt.Errorf("user 2 redeeming WELCOME after user 1: %w", err)
	}

	const holdInserts = `CREATE FUNCTION exercise12_hold() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_advisory_xact_lock_shared(12); -- couponHold
			RETURN NULL;
		END $$`
	const onEveryInsert = `CREATE TRIGGER exercise12_hold AFTER INSERT ON coupon_redemptions
		FOR EACH ROW EXECUTE FUNCTION exercise12_hold()`
	for _, stmt := range []string{holdInserts, onEveryInsert} {
		if _, err := db.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("hold the inserts into your coupon_redemptions: %w", err)
		}
	}
	release := benchkit.HoldLock(t, db, "SELECT pg_advisory_xact_lock($1)", int64(couponHold)) // the trigger waits for it
	other, err := benchkit.StartChild(t, otherDatabaseEnv+"="+benchkit.ChildDatabaseURL(db))
	if err != nil {
		return err
	}
	errs := make([]error, couponRequests)
	var returned atomic.Int64
	var requests sync.WaitGroup
	t.Cleanup(requests.Wait) // registered before the lock's release: runs after it
	for i := range errs {
		requests.Go(func() {
			errs[i] = servers[i%couponServers].Redeem(ctx, 3, "FLASH50")
			returned.Add(1)
		})
	}
	held, err := waitUntilHeld(t, db, &returned, other.Done())
	release()
	requests.Wait()
	out, otherErr := other.Wait()
	if err != nil {
		return err
	}

	redeemedHere := 0
	for i, err := range errs {
		switch {
		case err == nil:
			redeemedHere++
		case errors.Is(err, shop.ErrAlreadyRedeemed):
		default:
			return fmt.Errorf("request %d of %d at once: %w (want nil or shop.ErrAlreadyRedeemed)", i, couponRequests, err)
		}
	}
	there, err := readOtherReport(out, otherErr)
	if err != nil {
		return err
	}
	if len(there.Failed) > 0 {
		return fmt.Errorf("a request in the second process, at once with the others: %s (want nil or shop.ErrAlreadyRedeemed)", there.Failed[0])
	}
	const redemptions = `SELECT count(*) FROM coupon_redemptions WHERE user_id = 3 AND code = 'FLASH50'`
	var rows int
	if err := db.QueryRow(ctx, redemptions).Scan(&rows); err != nil {
		return fmt.Errorf("count the redemptions: %w", err)
	}
	redeemed := redeemedHere + there.Redeemed
	if redeemed == 1 && rows == 1 {
		t.Logf("%d requests at once, %d of them in a second process, %d held at the check's lock together: FLASH50 redeemed once",
			couponRequests+otherRequests, otherRequests, held)
		return nil
	}
	noKey, err := withoutUniqueKey(ctx, db)
	if err != nil {
		return err
	}
	switch {
	case rows == 0:
		return fmt.Errorf("%d requests at once redeemed FLASH50 %d times, in no row: want one row", couponRequests+otherRequests, redeemed)
	case rows == 1:
		return fmt.Errorf("%d requests at once redeemed FLASH50 %d times, in 1 row: a request that did not redeem it must return shop.ErrAlreadyRedeemed",
			couponRequests+otherRequests, redeemed)
	case redeemedHere <= 1 && there.Redeemed >= 1:
		return fmt.Errorf("%d requests at once through your four servers in one process redeemed FLASH50 %d time(s), and %d at once in a second process "+
			"redeemed it %d more time(s), in %d rows: want once. A second process is another server: whatever stops a second redemption must hold "+
			"across processes, as the database does; a mutex holds in one process's memory only (lesson 12, \"The scales version\")%s",
			couponRequests, redeemedHere, otherRequests, there.Redeemed, rows, noKey)
	}
	return fmt.Errorf("%d requests at once redeemed FLASH50 %d times, in %d rows: want once. The check held every redemption's insert, "+
		"uncommitted, until %d requests waited in the database at once, as two requests on two servers do in production: each looked "+
		"for a redemption before the other's was committed (lesson 12, \"Why it breaks\")%s", couponRequests+otherRequests, redeemed, rows, heldAtOnce, noKey)
}

// waitUntilHeld waits until heldAtOnce queries of db's database wait for a
// lock, or until every request the check sent in this process has returned
// or waits (and the second process, done, has none waiting either), and
// returns how many waited. It fails if that takes benchkit.HangBound.
func waitUntilHeld(t *testing.T, db *pgxpool.Pool, returned *atomic.Int64, otherDone <-chan struct{}) (int, error) {
	t.Helper()
	waiting, err := benchkit.PollLockWaiters(t, db, benchkit.HangBound, func(waiting int) (bool, error) {
		if waiting >= heldAtOnce {
			return true, nil
		}
		select {
		case <-otherDone:
			return int(returned.Load())+waiting == couponRequests, nil // nothing left to arrive
		default:
			return false, nil
		}
	})
	if errors.Is(err, benchkit.ErrLockWaitersTimedOut) {
		return waiting, fmt.Errorf("after %v, %d of the redemptions at once waited at the check's lock and %d of the %d in this process had returned: "+
			"the others still neither returned nor reached the database", benchkit.HangBound, waiting, returned.Load(), couponRequests)
	}
	if err != nil {
		return waiting, fmt.Errorf("count the requests waiting for the check's lock: %w", err)
	}
	return waiting, nil
}

// redeemInTheSecondProcess is checkExercise12 in the second process: a
// server of its own on the check's database, and otherRequests redemptions
// at once, reported on stdout; then the test is skipped, as its verdict is
// the first process's.
func redeemInTheSecondProcess(t *testing.T, newCoupons newCouponsFunc) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(os.Getenv(otherDatabaseEnv))
	require.NoError(t, err, "the check's database")
	cfg.MaxConns = otherPool
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err, "the check's database")
	defer db.Close()
	coupons, err := newCoupons(db)
	require.NoError(t, err, "your NewCoupons, in the second process")
	errs := make([]error, otherRequests)
	var requests sync.WaitGroup
	for i := range errs {
		requests.Go(func() { errs[i] = coupons.Redeem(ctx, 3, "FLASH50") })
	}
	requests.Wait()
	var report otherReport
	for _, err := range errs {
		switch {
		case err == nil:
			report.Redeemed++
		case errors.Is(err, shop.ErrAlreadyRedeemed):
			report.Already++
		default:
			report.Failed = append(report.Failed, err.Error())
		}
	}
	line, err := json.Marshal(report)
	require.NoError(t, err)
	fmt.Printf("%s%s\n", otherMark, line)
	t.SkipNow()
}

// readOtherReport reads the second process's report from what it printed.
func readOtherReport(out string, exitErr error) (otherReport, error) {
	var report otherReport
	for line := range strings.Lines(out) {
		if text, ok := strings.CutPrefix(line, otherMark); ok {
			if err := json.Unmarshal([]byte(text), &report); err != nil {
				return report, fmt.Errorf("the second process's report %q: %w", text, err)
			}
			if exitErr != nil {
				return report, fmt.Errorf("the second process failed (%v); its last lines:\n%s", exitErr, lastLines(out, 30))
			}
			return report, nil
		}
	}
	return report, fmt.Errorf("the second process ended without a report (%v); its last lines:\n%s", exitErr, lastLines(out, 30))
}

// lastLines returns the last n lines of text.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// withoutUniqueKey says, after a comma, that coupon_redemptions has no
// unique key on (user_id, code) or a part of it, if so: nothing in the
// database then refuses a second redemption. It is empty otherwise.
func withoutUniqueKey(ctx context.Context, db *pgxpool.Pool) (string, error) {
	const uniqueKey = `SELECT EXISTS (
		SELECT FROM pg_index i
		WHERE i.indrelid = 'coupon_redemptions'::regclass AND i.indisunique AND i.indpred IS NULL
		AND NOT EXISTS (
			SELECT FROM unnest(i.indkey::int2[]) AS k(attnum)
			WHERE k.attnum NOT IN (SELECT attnum FROM pg_attribute
				WHERE attrelid = i.indrelid AND attname IN ('user_id', 'code'))))`
	var unique bool
	if err := db.QueryRow(ctx, uniqueKey).Scan(&unique); err != nil {
		return "", fmt.Errorf("read coupon_redemptions' unique keys: %w", err)
	}
	if unique {
		return ".", nil
	}
	return "; and coupon_redemptions has no unique key on (user_id, code): nothing in the database refuses a second row.", nil
}

func TestExercise12CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise12(t, naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return naive.NewCoupons(db) })
	requireRedeemedTwice(t, err, "no unique key")
}

func TestExercise12CheckFailsOnACheckInATransaction(t *testing.T) {
	err := checkExercise12(t, naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return txCoupons{db}, nil })
	requireRedeemedTwice(t, err, "no unique key")
}

func TestExercise12CheckFailsOnOneStatementWithoutAUniqueKey(t *testing.T) {
	err := checkExercise12(t, naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return notExistsCoupons{db}, nil })
	requireRedeemedTwice(t, err, "no unique key")
}

func TestExercise12CheckFailsOnAMutexPerServer(t *testing.T) {
	err := checkExercise12(t, naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) {
		coupons, err := naive.NewCoupons(db)
		return &mutexCoupons{coupons: coupons}, err
	})
	requireRedeemedTwice(t, err, "redeemed FLASH50")
}

func TestExercise12CheckFailsOnAMutexPerProcess(t *testing.T) {
	err := checkExercise12(t, naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) {
		coupons, err := naive.NewCoupons(db)
		return processMutexCoupons{coupons}, err
	})
	requireRedeemedTwice(t, err, "redeemed FLASH50 1 time(s), and 10 at once in a second process redeemed it 1 more time(s), in 2 rows")
	require.ErrorContains(t, err, "a mutex holds in one process's memory only")
}

func TestExercise12CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise12(t, scalable.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return scalable.NewCoupons(db) }))
}

func TestExercise12CheckPassesOnAUniqueKeyBehindTheCheck(t *testing.T) {
	require.NoError(t, checkExercise12(t, scalable.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return txCoupons{db}, nil }))
}

func TestExercise12CheckPassesOnAMutexPerProcessBehindAUniqueKey(t *testing.T) {
	require.NoError(t, checkExercise12(t, scalable.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) {
		coupons, err := scalable.NewCoupons(db)
		return processMutexCoupons{coupons}, err
	}))
}

// requireRedeemedTwice requires the check to have found FLASH50 redeemed
// more than once, in more than one row, saying want.
func requireRedeemedTwice(t *testing.T, err error, want string) {
	t.Helper()
	require.Error(t, err)
	m := regexp.MustCompile(`redeemed FLASH50 (\d+) time.*in (\d+) rows`).FindStringSubmatch(err.Error())
	require.NotNil(t, m, "the check says how many times, in how many rows: %v", err)
	require.NotEqual(t, "1", m[2], "more than one row: %v", err)
	require.ErrorContains(t, err, want)
	t.Log(err)
}

// txCoupons is the first fix people write: the check and the insert in one
// transaction. At READ COMMITTED, two transactions still both find no row.
// Over a table with a unique key, it is right: the second insert fails on
// the key (23505), and that says "already redeemed".
type txCoupons struct{ db *pgxpool.Pool }

func (c txCoupons) Redeem(ctx context.Context, userID int64, code string) error {
	tx, err := c.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var done bool
	const redeemed = `SELECT EXISTS (SELECT FROM coupon_redemptions WHERE user_id = $1 AND code = $2)`
	if err := tx.QueryRow(ctx, redeemed, userID, code).Scan(&done); err != nil {
		return err
	}
	if done {
		return shop.ErrAlreadyRedeemed
	}
	const redeem = `INSERT INTO coupon_redemptions (user_id, code) VALUES ($1, $2)`
	_, err = tx.Exec(ctx, redeem, userID, code)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return shop.ErrAlreadyRedeemed
	}
	if err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// notExistsCoupons is the second: the check and the insert in one statement,
// INSERT … SELECT … WHERE NOT EXISTS, on the table as it was, with no unique
// key. Two statements at once each look with a snapshot taken before the
// other's row is committed, and both insert.
type notExistsCoupons struct{ db *pgxpool.Pool }

func (c notExistsCoupons) Redeem(ctx context.Context, userID int64, code string) error {
	const redeem = `INSERT INTO coupon_redemptions (user_id, code)
		SELECT $1, $2 WHERE NOT EXISTS (SELECT FROM coupon_redemptions WHERE user_id = $1 AND code = $2)`
	tag, err := c.db.Exec(ctx, redeem, userID, code)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return shop.ErrAlreadyRedeemed
	}
	return nil
}

// mutexCoupons is the third: the requests of one server take turns on a
// mutex; four servers' requests do not.
type mutexCoupons struct {
	mu      sync.Mutex
	coupons *naive.Coupons
}

func (c *mutexCoupons) Redeem(ctx context.Context, userID int64, code string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.coupons.Redeem(ctx, userID, code)
}

// redeemMu is the fourth's: one mutex for every Coupons of the process, so
// the four servers in the check's process take turns; the second process has
// a mutex of its own.
var redeemMu sync.Mutex

// processMutexCoupons takes redeemMu around the redemption of the Coupons it
// wraps.
type processMutexCoupons struct{ coupons couponRedeemer }

func (c processMutexCoupons) Redeem(ctx context.Context, userID int64, code string) error {
	redeemMu.Lock()
	defer redeemMu.Unlock()
	return c.coupons.Redeem(ctx, userID, code)
}

func TestCouponsRefuseHostileInput(t *testing.T) {
	impls := []struct {
		name        string
		createTable createCouponTableFunc
		new         newCouponsFunc
	}{
		{"naive", naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return naive.NewCoupons(db) }},
		{"scalable", scalable.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return scalable.NewCoupons(db) }},
	}
	for _, impl := range impls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			ctx := context.Background()
			require.NoError(t, impl.createTable(ctx, db))
			coupons, err := impl.new(db)
			require.NoError(t, err)
			require.ErrorIs(t, coupons.Redeem(ctx, 1, ""), shop.ErrInvalidCoupon)
			require.ErrorIs(t, coupons.Redeem(ctx, 1, strings.Repeat("x", 65)), shop.ErrInvalidCoupon)
			require.ErrorIs(t, coupons.Redeem(ctx, -1, "WELCOME"), shop.ErrUserNotFound)
			require.ErrorIs(t, coupons.Redeem(ctx, 1<<62, "WELCOME"), shop.ErrUserNotFound)
			require.NoError(t, coupons.Redeem(ctx, 1, "WELCOME"), "the failed redemptions left nothing behind")
			require.NoError(t, coupons.Redeem(ctx, 1, "welcome"), "codes are compared as they are")
			var rows int
			require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM coupon_redemptions").Scan(&rows))
			require.Equal(t, 2, rows)
		})
	}
}
