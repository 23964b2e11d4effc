package races

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
	couponServers  = 4  // Coupons made, as by four servers
	couponRequests = 50 // redemptions of one coupon by one user, at once
)

// newCouponsFunc makes the coupons of one server on db, as NewCoupons does.
type newCouponsFunc func(db *pgxpool.Pool) (couponRedeemer, error)

// checkExercise12 says what is still wrong with an answer to lesson 12's
// exercise, or nil when it is done: one at a time, a user redeems a coupon
// once; 50 requests at once, through four servers, redeem it once. The
// coupon table is locked while the requests arrive, until four of them wait
// for it: each of those has done whatever it does before writing.
func checkExercise12(t *testing.T, createTable createCouponTableFunc, newCoupons newCouponsFunc) error {
	db := pgtest.ShopClone(t, shop.Small)
	ctx := context.Background()
	if err := createTable(ctx, db); err != nil {
		return fmt.Errorf("your CreateCouponTable: %w", err)
	}
	pool := benchkit.SharedPool(t, db, buyersPoolSize)
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

	errs := atOnce(t, db, "coupon_redemptions", "SHARE", couponRequests, couponServers, func(i int) error {
		return servers[i%couponServers].Redeem(ctx, 3, "FLASH50")
	})
	redeemed := 0
	for i, err := range errs {
		switch {
		case err == nil:
			redeemed++
		case errors.Is(err, shop.ErrAlreadyRedeemed):
		default:
			return fmt.Errorf("request %d of %d at once: %w (want nil or shop.ErrAlreadyRedeemed)", i, couponRequests, err)
		}
	}
	const redemptions = `SELECT count(*) FROM coupon_redemptions WHERE user_id = 3 AND code = 'FLASH50'`
	var rows int
	if err := db.QueryRow(ctx, redemptions).Scan(&rows); err != nil {
		return fmt.Errorf("count the redemptions: %w", err)
	}
	if redeemed != 1 || rows != 1 {
		return fmt.Errorf("%d requests at once redeemed FLASH50 %d times, in %d rows: want once", couponRequests, redeemed, rows)
	}
	return nil
}

func TestExercise12CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise12(t, naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return naive.NewCoupons(db) })
	require.ErrorContains(t, err, "redeemed FLASH50")
}

func TestExercise12CheckFailsOnACheckInATransaction(t *testing.T) {
	err := checkExercise12(t, naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return txCoupons{db}, nil })
	require.ErrorContains(t, err, "redeemed FLASH50")
}

func TestExercise12CheckFailsOnAMutexPerServer(t *testing.T) {
	err := checkExercise12(t, naive.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) {
		coupons, err := naive.NewCoupons(db)
		return &mutexCoupons{coupons: coupons}, err
	})
	require.ErrorContains(t, err, fmt.Sprintf("redeemed FLASH50 %d times", couponServers))
}

func TestExercise12CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise12(t, scalable.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return scalable.NewCoupons(db) }))
}

func TestExercise12CheckPassesOnAUniqueKeyBehindTheCheck(t *testing.T) {
	require.NoError(t, checkExercise12(t, scalable.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return txCoupons{db}, nil }))
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

// mutexCoupons is the second: the requests of one server take turns on a
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
