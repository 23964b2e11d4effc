package shop

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// OldRelease is the shop's code before lesson 20 renames users.phone to
// users.phone_number: it keeps a user's phone number in users.phone. It is
// still running on some servers while the new release rolls out. Both sides
// of the lesson (naive/migrations, scalable/migrations) migrate under it.
type OldRelease struct{ DB *pgxpool.Pool }

// SetPhone sets a user's phone number.
func (r OldRelease) SetPhone(ctx context.Context, userID int64, phone string) error {
	const set = `UPDATE users SET phone = $2 WHERE id = $1`
	return updatePhone(ctx, r.DB, set, userID, phone)
}

// Phone returns a user's phone number, "" if they gave none.
func (r OldRelease) Phone(ctx context.Context, userID int64) (string, error) {
	const get = `SELECT coalesce(phone, '') FROM users WHERE id = $1`
	return selectPhone(ctx, r.DB, get, userID)
}

// NewRelease is the shop's code after lesson 20's rename: it keeps a user's
// phone number in users.phone_number, a column the shop's schema has only
// once a migration adds it.
type NewRelease struct{ DB *pgxpool.Pool }

// SetPhone sets a user's phone number.
func (r NewRelease) SetPhone(ctx context.Context, userID int64, phone string) error {
	const set = `UPDATE users SET phone_number = $2 WHERE id = $1`
	return updatePhone(ctx, r.DB, set, userID, phone)
}

// Phone returns a user's phone number, "" if they gave none.
func (r NewRelease) Phone(ctx context.Context, userID int64) (string, error) {
	const get = `SELECT coalesce(phone_number, '') FROM users WHERE id = $1`
	return selectPhone(ctx, r.DB, get, userID)
}

func updatePhone(ctx context.Context, db *pgxpool.Pool, set string, userID int64, phone string) error {
	tag, err := db.Exec(ctx, set, userID, phone)
	if err != nil {
		return fmt.Errorf("set the phone of user %d: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set the phone of user %d: %w", userID, ErrUserNotFound)
	}
	return nil
}

func selectPhone(ctx context.Context, db *pgxpool.Pool, get string, userID int64) (string, error) {
	var p string
	err := db.QueryRow(ctx, get, userID).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("the phone of user %d: %w", userID, ErrUserNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("the phone of user %d: %w", userID, err)
	}
	return p, nil
}
