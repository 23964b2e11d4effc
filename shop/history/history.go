// Package history is the shop's order history as lesson 19 keeps it, a
// decade of orders in the schema history: its rows, the limits on what may
// be asked of it, and the two queries both sides of the lesson run as they
// are (naive/partitioning, scalable/partitioning). The queries are the same
// on both sides; the tables under them, made by each side's CreateTables,
// are the lesson.
package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The errors every function of the history, here and on both sides of the
// lesson, returns for input it refuses, before it asks the database anything.
var (
	ErrZeroTime       = errors.New("history: zero time")
	ErrEmptyRange     = errors.New("history: range ends before it starts")
	ErrRangeTooLong   = errors.New("history: range too long")
	ErrNotMonthStart  = errors.New("history: not the first instant of a month, UTC")
	ErrBadLimit       = errors.New("history: page size out of range")
	ErrYearOutOfRange = errors.New("history: month outside the years 1 to 9999")
)

// The times the history takes: the years 1 to 9999, and the first instant
// after them (the end of a range, or a cutoff that keeps nothing). pgx
// writes a time as microseconds in an int64, which wraps round past the year
// 294,000 or so to another time, one PostgreSQL takes: a week in the year
// 586,000 would be read as one in 2024.
var (
	firstTime = time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)
	endTime   = time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// checkYears returns an error wrapping ErrYearOutOfRange, with what names t,
// unless t is in the years 1 to 9999 or is the first instant after them.
func checkYears(what string, t time.Time) error {
	if t.Before(firstTime) || t.After(endTime) {
		return fmt.Errorf("%s %v: %w", what, t, ErrYearOutOfRange)
	}
	return nil
}

// MaxDays is the longest range OrdersPerDay answers; MaxMonths the most
// months MonthsBetween returns (and a side's PrepareMonths makes ready at
// once); MaxPage the largest page.
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

// OrdersPerDay returns the orders of each day in [from, to) that had any,
// oldest first, from history.orders. Which index or partitions the planner
// reads depends on the tables under it.
func OrdersPerDay(ctx context.Context, db *pgxpool.Pool, from, to time.Time) ([]DayCount, error) {
	if err := CheckRange(from, to); err != nil {
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

// UserOrdersPage returns up to limit of the user's orders older than the
// order (beforeAt, beforeID), newest first: lesson 2's keyset page. Start
// with a zero beforeAt: the first page has the user's newest orders, however
// late they were placed. Any other beforeAt outside the years 1 to 9999 is
// an error wrapping ErrYearOutOfRange.
func UserOrdersPage(ctx context.Context, db *pgxpool.Pool, userID int64, beforeAt time.Time, beforeID int64, limit int) ([]Order, error) {
	if limit < 1 || limit > MaxPage {
		return nil, fmt.Errorf("page of %d orders of user %d: %w", limit, userID, ErrBadLimit)
	}
	if !beforeAt.IsZero() {
		if err := checkYears(fmt.Sprintf("page of orders of user %d before", userID), beforeAt); err != nil {
			return nil, err
		}
	}
	const firstPageQuery = `
		SELECT id, user_id, total_cents, created_at FROM history.orders
		WHERE user_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`
	const pageQuery = `
		SELECT id, user_id, total_cents, created_at FROM history.orders
		WHERE user_id = $1 AND (created_at, id) < ($2, $3)
		ORDER BY created_at DESC, id DESC LIMIT $4`
	var rows pgx.Rows
	var err error
	if beforeAt.IsZero() {
		rows, err = db.Query(ctx, firstPageQuery, userID, limit)
	} else {
		rows, err = db.Query(ctx, pageQuery, userID, beforeAt, beforeID, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("page of orders of user %d: %w", userID, err)
	}
	orders, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Order])
	if err != nil {
		return nil, fmt.Errorf("page of orders of user %d: %w", userID, err)
	}
	return orders, nil
}

// CheckRange returns an error, ErrZeroTime, ErrYearOutOfRange (wrapped with
// the end outside the years 1 to 9999), ErrEmptyRange or ErrRangeTooLong
// (wrapped with the range), unless [from, to) is a range OrdersPerDay
// answers.
func CheckRange(from, to time.Time) error {
	if from.IsZero() || to.IsZero() {
		return fmt.Errorf("range %v to %v: %w", from, to, ErrZeroTime)
	}
	if err := checkYears("range from", from); err != nil {
		return err
	}
	if err := checkYears("range to", to); err != nil {
		return err
	}
	switch {
	case !to.After(from):
		return fmt.Errorf("range %v to %v: %w", from, to, ErrEmptyRange)
	case to.Sub(from) > MaxDays*24*time.Hour:
		return fmt.Errorf("range %v to %v, longer than %d days: %w", from, to, MaxDays, ErrRangeTooLong)
	}
	return nil
}

// CheckMonthStart returns an error, ErrZeroTime, ErrYearOutOfRange or
// ErrNotMonthStart wrapped with t, unless t is the first instant of a month,
// UTC, in the years 1 to 9999 or January of the year 10000 (the end of
// December 9999).
func CheckMonthStart(t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("month %v: %w", t, ErrZeroTime)
	}
	if err := checkYears("month", t); err != nil {
		return err
	}
	if !t.Equal(time.Date(t.UTC().Year(), t.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)) {
		return fmt.Errorf("month %v: %w", t, ErrNotMonthStart)
	}
	return nil
}

// MonthsBetween returns the first instants of the months from from up to
// to, both first instants of a month, at most MaxMonths of them, each in the
// years 1 to 9999 (ErrYearOutOfRange otherwise): the years a partition's
// name and bounds are written for, and those PostgreSQL and Go agree on.
func MonthsBetween(from, to time.Time) ([]time.Time, error) {
	if err := CheckMonthStart(from); err != nil {
		return nil, err
	}
	if err := CheckMonthStart(to); err != nil {
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
	if last := to.AddDate(0, -1, 0); from.Year() < 1 || last.Year() > 9999 {
		return nil, fmt.Errorf("months %v to %v: %w", from, to, ErrYearOutOfRange)
	}
	months := make([]time.Time, n)
	for i := range months {
		months[i] = from.AddDate(0, i, 0)
	}
	return months, nil
}
