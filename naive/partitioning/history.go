package partitioning

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The errors every function returns for input it refuses, before it asks the
// database anything.
var (
	ErrZeroTime      = errors.New("partitioning: zero time")
	ErrEmptyRange    = errors.New("partitioning: range ends before it starts")
	ErrRangeTooLong  = errors.New("partitioning: range too long")
	ErrNotMonthStart = errors.New("partitioning: not the first instant of a month, UTC")
	ErrBadLimit      = errors.New("partitioning: page size out of range")
)

// MaxDays is the longest range OrdersPerDay answers; MaxMonths the most
// months PrepareMonths makes ready at once; MaxPage the largest page.
const (
	MaxDays   = 366
	MaxMonths = 1200
	MaxPage   = 1000
)

// DayCount is one day's orders and what they came to.
type DayCount struct {
	Day          time.Time // midnight UTC
	Orders       int64
	RevenueCents int64
}

// Order is one row of a user's page of orders.
type Order struct {
	ID         int64
	UserID     int64
	TotalCents int64
	CreatedAt  time.Time
}

// CreateTables creates the order history in the schema history: one orders
// table and its items, keyed by id, with a B-tree on created_at for the
// recent-data queries and one on a user's orders, newest first, for the pages.
func CreateTables(ctx context.Context, db *pgxpool.Pool) error {
	const createTables = `
		CREATE SCHEMA history;
		CREATE TABLE history.orders (
			id          bigint      PRIMARY KEY,
			user_id     bigint      NOT NULL,
			total_cents bigint      NOT NULL,
			created_at  timestamptz NOT NULL
		);
		CREATE TABLE history.order_items (
			order_id    bigint      NOT NULL REFERENCES history.orders (id),
			created_at  timestamptz NOT NULL, -- the order's, as on the scalable side
			line_no     integer     NOT NULL,
			product_id  bigint      NOT NULL,
			price_cents bigint      NOT NULL,
			PRIMARY KEY (order_id, line_no)
		);
		CREATE INDEX orders_created_at_idx ON history.orders (created_at);
		CREATE INDEX orders_user_id_created_at_idx ON history.orders (user_id, created_at DESC, id DESC);`
	if _, err := db.Exec(ctx, createTables); err != nil {
		return fmt.Errorf("create the order history: %w", err)
	}
	return nil
}

// PrepareMonths makes the months from from up to to ready for orders. One
// table takes any month: it only checks its input.
func PrepareMonths(ctx context.Context, db *pgxpool.Pool, from, to time.Time) error {
	_, err := monthsBetween(from, to)
	return err
}

// OrdersPerDay returns the orders of each day in [from, to) that had any,
// oldest first. It uses orders_created_at_idx, whose size grows with every
// year kept, whichever week is asked for.
func OrdersPerDay(ctx context.Context, db *pgxpool.Pool, from, to time.Time) ([]DayCount, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	const perDayQuery = `
		SELECT date_trunc('day', created_at, 'UTC'), count(*), sum(total_cents)
		FROM history.orders
		WHERE created_at >= $1 AND created_at < $2
		GROUP BY 1 ORDER BY 1`
	rows, err := db.Query(ctx, perDayQuery, from, to)
	if err != nil {
		return nil, fmt.Errorf("orders per day from %v to %v: %w", from, to, err)
	}
	days, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DayCount, error) {
		var d DayCount
		err := row.Scan(&d.Day, &d.Orders, &d.RevenueCents)
		d.Day = d.Day.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("orders per day from %v to %v: %w", from, to, err)
	}
	return days, nil
}

// DeleteBefore removes every order placed before cutoff, the first instant of
// a month, with its items, in one transaction, and returns how many orders it
// removed. Every removed row is a dead tuple until VACUUM comes, and every
// one is written to the WAL (and so to every replica).
func DeleteBefore(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	if err := checkMonthStart(cutoff); err != nil {
		return 0, err
	}
	var removed int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		const deleteItems = `DELETE FROM history.order_items WHERE created_at < $1`
		if _, err := tx.Exec(ctx, deleteItems, cutoff); err != nil {
			return err
		}
		const deleteOrders = `DELETE FROM history.orders WHERE created_at < $1`
		tag, err := tx.Exec(ctx, deleteOrders, cutoff)
		removed = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete orders before %v: %w", cutoff, err)
	}
	return removed, nil
}

// UserOrdersPage returns up to limit of the user's orders older than the
// order (beforeAt, beforeID), newest first: lesson 2's keyset page. Start
// with a zero beforeAt.
func UserOrdersPage(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) ([]Order, error) {
	if limit < 1 || limit > MaxPage {
		return nil, fmt.Errorf("page of %d orders of user %d: %w", limit, userID, ErrBadLimit)
	}
	if beforeAt.IsZero() {
		beforeAt, beforeID = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 0
	}
	const pageQuery = `
		SELECT id, user_id, total_cents, created_at FROM history.orders
		WHERE user_id = $1 AND (created_at, id) < ($2, $3)
		ORDER BY created_at DESC, id DESC LIMIT $4`
	rows, err := db.Query(ctx, pageQuery, userID, beforeAt, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("page of orders of user %d: %w", userID, err)
	}
	orders, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Order])
	if err != nil {
		return nil, fmt.Errorf("page of orders of user %d: %w", userID, err)
	}
	return orders, nil
}

func checkRange(from, to time.Time) error {
	switch {
	case from.IsZero() || to.IsZero():
		return fmt.Errorf("range %v to %v: %w", from, to, ErrZeroTime)
	case !to.After(from):
		return fmt.Errorf("range %v to %v: %w", from, to, ErrEmptyRange)
	case to.Sub(from) > MaxDays*24*time.Hour:
		return fmt.Errorf("range %v to %v, longer than %d days: %w", from, to, MaxDays, ErrRangeTooLong)
	}
	return nil
}

func checkMonthStart(t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("month %v: %w", t, ErrZeroTime)
	}
	if !t.Equal(time.Date(t.UTC().Year(), t.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)) {
		return fmt.Errorf("month %v: %w", t, ErrNotMonthStart)
	}
	return nil
}

// monthsBetween returns the first instants of the months from from up to
// to, both first instants of a month.
func monthsBetween(from, to time.Time) ([]time.Time, error) {
	if err := checkMonthStart(from); err != nil {
		return nil, err
	}
	if err := checkMonthStart(to); err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, fmt.Errorf("months %v to %v: %w", from, to, ErrEmptyRange)
	}
	from, to = from.UTC(), to.UTC()
	n := (to.Year()-from.Year())*12 + int(to.Month()-from.Month())
	if n > MaxMonths {
		return nil, fmt.Errorf("%d months from %v, more than %d: %w", n, from, MaxMonths, ErrRangeTooLong)
	}
	months := make([]time.Time, n)
	for i := range months {
		months[i] = from.AddDate(0, i, 0)
	}
	return months, nil
}
