// Package races is lesson 12's exercise: yours to change.
//
// A coupon may be redeemed once per user. Redeem below checks whether the
// user has redeemed it, then inserts the redemption: correct one request at
// a time, and two requests at once both find no row and both redeem. Make it
// right for many requests at once, on many servers (a mutex in one process
// does not help the others), then check:
//
//	go test -race -tags exercise -run '^TestExercise12$' ./bench/races
//
// The check creates the table with your CreateCouponTable in a copy of the
// shop, then sends 50 redemptions of one coupon by one user at once, through
// four Coupons as four servers would, and 10 more from a second process, as
// another instance of the service would: exactly one may redeem. Every
// insert into coupon_redemptions waits, uncommitted, at a lock the check
// holds until two requests wait in the database, so two requests that both
// got past your check are caught every time. One answer is in
// works-vs-scales/scalable/races.
package races

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// CreateCouponTable creates the table of redeemed coupons, a row per user
// and code.
func CreateCouponTable(ctx context.Context, db *pgxpool.Pool) error {
	const createTable = `CREATE TABLE coupon_redemptions (
		user_id     bigint      NOT NULL REFERENCES users (id),
		code        text        NOT NULL,
		redeemed_at timestamptz NOT NULL DEFAULT now())`
	if _, err := db.Exec(ctx, createTable); err != nil {
		return fmt.Errorf("create the coupon table: %w", err)
	}
	return nil
}

// Coupons redeems coupons, each once per user.
type Coupons struct {
	db *pgxpool.Pool
}

// NewCoupons returns Coupons on db, or an error wrapping
// [shop.ErrInvalidConfig] for no database.
func NewCoupons(db *pgxpool.Pool) (*Coupons, error) {
	if db == nil {
		return nil, fmt.Errorf("coupons: no database: %w", shop.ErrInvalidConfig)
	}
	return &Coupons{db: db}, nil
}

// Redeem redeems the coupon code for a user, or returns
// [shop.ErrAlreadyRedeemed] if the user has redeemed it before.
func (c *Coupons) Redeem(ctx context.Context, userID int64, code string) error {
	if code == "" || len(code) > 64 {
		return fmt.Errorf("redeem %s: %w", shop.Quote(code), shop.ErrInvalidCoupon)
	}
	const redeemed = `SELECT EXISTS (SELECT FROM coupon_redemptions WHERE user_id = $1 AND code = $2)`
	var done bool
	if err := c.db.QueryRow(ctx, redeemed, userID, code).Scan(&done); err != nil {
		return fmt.Errorf("redeem %s for user %d: %w", shop.Quote(code), userID, err)
	}
	if done {
		return fmt.Errorf("redeem %s for user %d: %w", shop.Quote(code), userID, shop.ErrAlreadyRedeemed)
	}
	const redeem = `INSERT INTO coupon_redemptions (user_id, code) VALUES ($1, $2)`
	_, err := c.db.Exec(ctx, redeem, userID, code)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return fmt.Errorf("redeem %s for user %d: %w", shop.Quote(code), userID, shop.ErrUserNotFound)
	}
	if err != nil {
		return fmt.Errorf("redeem %s for user %d: %w", shop.Quote(code), userID, err)
	}
	return nil
}
