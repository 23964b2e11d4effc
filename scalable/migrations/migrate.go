package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"works-vs-scales/internal/goosepg"
	"works-vs-scales/shop"
)

// The versions of the shop's migrations: SQL in sql/, Go below.
const (
	AddTotal      int64 = 1 // orders.total_cents, empty
	BackfillTotal int64 = 2 // every order's total, a batch per transaction
	IndexTotal    int64 = 3 // an index on orders.total_cents, built concurrently
	ExpandPhone   int64 = 4 // users.phone_number beside phone, kept in step by a trigger
	BackfillPhone int64 = 5 // phone_number of every user, a batch per transaction
	ContractPhone int64 = 6 // users.phone dropped: run once no release reads it
)

// ErrUnknownVersion is returned for a version below the first, before the
// database is asked anything.
var ErrUnknownVersion = errors.New("migrations: no such version")

//go:embed sql/*.sql
var files embed.FS

// Migrator applies the shop's migrations under traffic. Its zero value is
// ready to use, with the defaults below.
type Migrator struct {
	// Attempts is how many times a migration that gave up waiting for a
	// lock (its lock_timeout) is tried before Migrate gives up: 10 if 0.
	Attempts int
	// Backoff is the pause after the first give-up, doubling after each
	// one up to MaxBackoff, each drawn at random from its upper half, so
	// that the queries that queued behind the migration go through, and
	// several migrators do not retry in step: 50 ms and 2 s if 0.
	Backoff, MaxBackoff time.Duration
	// BatchSize is how many rows, by key range, a backfill updates in one
	// transaction: 1,000 if 0.
	BatchSize int
	// Pause is how long a backfill waits between batches, for replicas and
	// vacuum to keep up: 5 ms if 0, none if negative.
	Pause time.Duration
}

// Migrate applies the shop's migrations up to version to, with a zero
// Migrator.
func Migrate(ctx context.Context, db *pgxpool.Pool, to int64) error {
	return Migrator{}.Migrate(ctx, db, to)
}

// Migrate applies the shop's migrations up to version to; a version past
// the last applies them all. A migration that gives up waiting for a lock is
// rolled back, and Migrate tries it again after a pause, up to m.Attempts
// times; it then returns the error, which wraps the server's (SQLSTATE
// 55P03, lock_not_available), with the migrations before it applied: run
// Migrate again later. No database, or a negative field of m, is an error
// wrapping [shop.ErrInvalidConfig].
func (m Migrator) Migrate(ctx context.Context, db *pgxpool.Pool, to int64) error {
	if err := m.check(db, to); err != nil {
		return err
	}
	// One migrator at a time: two servers starting at once both call
	// Migrate, and the second waits for the first's session lock.
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	provider, err := goosepg.NewProvider(db, files, "sql",
		goose.WithSessionLocker(locker),
		goose.WithGoMigrations(
			// RunDB, not RunTx: no transaction around the migration, so
			// that each batch commits on its own.
			goose.NewGoMigration(BackfillTotal, &goose.GoFunc{RunDB: m.backfillTotal}, nil),
			goose.NewGoMigration(BackfillPhone, &goose.GoFunc{RunDB: m.backfillPhone}, nil),
		))
	if err != nil {
		return err
	}
	defer provider.Close()
	attempts := orDefault(m.Attempts, 10)
	pause := orDefault(m.Backoff, 50*time.Millisecond)
	for attempt := 1; ; attempt++ {
		_, err := provider.UpTo(ctx, to)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			// Whatever the attempt says (goose's error, or the server's
			// 57014 for the statement pgx cancelled), the context ended it.
			return fmt.Errorf("migrate to version %d, attempt %d of %d: %w (the last: %w)", to, attempt, attempts, ctx.Err(), err)
		}
		if !LockTimedOut(err) || attempt == attempts {
			return fmt.Errorf("migrate to version %d, attempt %d of %d: %w", to, attempt, attempts, err)
		}
		wait := pause/2 + rand.N(pause/2+1)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("migrate to version %d, after %d attempts: %w (the last: %w)", to, attempt, ctx.Err(), err)
		case <-timer.C:
		}
		pause = nextBackoff(pause, orDefault(m.MaxBackoff, 2*time.Second))
	}
}

// check refuses a migration to version to on db that cannot run.
func (m Migrator) check(db *pgxpool.Pool, to int64) error {
	switch {
	case db == nil:
		return fmt.Errorf("migrate to version %d: no database: %w", to, shop.ErrInvalidConfig)
	case to < AddTotal:
		return fmt.Errorf("migrate to version %d, the first is %d: %w", to, AddTotal, ErrUnknownVersion)
	case m.Attempts < 0 || m.Backoff < 0 || m.MaxBackoff < 0 || m.BatchSize < 0:
		return fmt.Errorf("migrator %+v: attempts, backoffs and batch size must be 0 (the default) or more: %w", m, shop.ErrInvalidConfig)
	}
	return nil
}

// nextBackoff returns pause doubled, at most longest, without overflowing.
func nextBackoff(pause, longest time.Duration) time.Duration {
	if pause > longest/2 {
		return longest
	}
	return 2 * pause
}

// batchEnd returns from + size, at most math.MaxInt64, without overflowing.
func batchEnd(from, size int64) int64 {
	if from > math.MaxInt64-size {
		return math.MaxInt64
	}
	return from + size
}

// LockTimedOut reports whether err is PostgreSQL giving up waiting for a
// lock, as it does after lock_timeout (SQLSTATE 55P03, lock_not_available).
func LockTimedOut(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// orDefault returns v, or def when v is zero.
func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// backfillTotal sets every order's total, a batch of orders by id per
// transaction. The orders placed after it reads their range, and the
// totals of orders whose items change, are set by migration 1's triggers;
// it skips the orders that have a total.
func (m Migrator) backfillTotal(ctx context.Context, db *sql.DB) error {
	const bounds = `SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM orders`
	const batch = `
		UPDATE orders o
		   SET total_cents = (SELECT coalesce(sum(i.quantity * i.price_cents), 0)
		                        FROM order_items i
		                       WHERE i.order_id = o.id)
		 WHERE o.id >= $1 AND o.id < $2 AND o.total_cents IS NULL`
	return m.backfill(ctx, db, "orders.total_cents", bounds, batch)
}

// backfillPhone copies every user's phone into phone_number, a batch of
// users by id per transaction; the trigger of migration 4 keeps them in step
// from then on.
func (m Migrator) backfillPhone(ctx context.Context, db *sql.DB) error {
	const bounds = `SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM users`
	const batch = `
		UPDATE users
		   SET phone_number = phone
		 WHERE id >= $1 AND id < $2 AND phone_number IS DISTINCT FROM phone`
	return m.backfill(ctx, db, "users.phone_number", bounds, batch)
}

// backfill runs batch, an UPDATE of the ids in [$1, $2), over the ids from
// bounds' first to its last, m.BatchSize ids at a time, each in a
// transaction of its own, pausing m.Pause between them. A backfill stopped
// half way starts again where the rows are still unset.
func (m Migrator) backfill(ctx context.Context, db *sql.DB, what, bounds, batch string) error {
	var first, last int64
	if err := db.QueryRowContext(ctx, bounds).Scan(&first, &last); err != nil {
		return fmt.Errorf("backfill %s: bounds: %w", what, err)
	}
	size := int64(orDefault(m.BatchSize, 1000))
	pause := orDefault(m.Pause, 5*time.Millisecond)
	for from := first; from <= last; {
		to := batchEnd(from, size)
		if _, err := db.ExecContext(ctx, batch, from, to); err != nil {
			return fmt.Errorf("backfill %s: ids %d to %d: %w", what, from, to-1, err)
		}
		if to > last || to == math.MaxInt64 {
			return nil
		}
		if pause > 0 {
			timer := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				timer.Stop()
				return fmt.Errorf("backfill %s: stopped before id %d: %w", what, to, ctx.Err())
			case <-timer.C:
			}
		}
		from = to
	}
	return nil
}

// InvalidIndexes returns the indexes of the current schema that a concurrent
// build left INVALID (pg_index.indisvalid false): queries never use them,
// and every write still maintains them. Migration 3 drops its own before it
// builds it again; a check of this kind, in monitoring, finds the others.
func InvalidIndexes(ctx context.Context, db *pgxpool.Pool) ([]string, error) {
	const invalid = `
		SELECT c.relname
		  FROM pg_index i
		  JOIN pg_class c ON c.oid = i.indexrelid
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE NOT i.indisvalid AND n.nspname = current_schema()
		 ORDER BY c.relname`
	rows, err := db.Query(ctx, invalid)
	if err != nil {
		return nil, fmt.Errorf("invalid indexes: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("invalid indexes: %w", err)
	}
	return names, nil
}
