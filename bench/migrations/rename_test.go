package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/goosepg"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/migrations"
	scalable "works-vs-scales/scalable/migrations"
	"works-vs-scales/shop"
)

// release is what both versions of the code do with a user's phone.
type release interface {
	SetPhone(ctx context.Context, userID int64, phone string) error
	Phone(ctx context.Context, userID int64) (string, error)
}

// renameUsers are the users whose phones the releases set and read: each
// release sets one and reads them all.
var renameUsers = []int64{1, 2, 3, 4, 5}

// useBoth has each release, in turn, set the phone of a user of its own and
// read every user's phone back, as two versions of the service running at
// once would. It returns how many calls of each failed, and the first
// error; a read that does not return what the last write set is a failure
// too.
func useBoth(t *testing.T, old, new release, round int) (oldFailed, newFailed int, firstErr error) {
	t.Helper()
	ctx := context.Background()
	want := make(map[int64]string)
	fail := func(n *int, err error) {
		*n++
		if firstErr == nil {
			firstErr = err
		}
	}
	for i, userID := range renameUsers {
		r, failed := old, &oldFailed
		if i%2 == 1 {
			r, failed = new, &newFailed
		}
		phone := fmt.Sprintf("+44 20 7946 %02d%02d", round, userID)
		if err := r.SetPhone(ctx, userID, phone); err != nil {
			fail(failed, err)
			continue
		}
		want[userID] = phone
	}
	for _, r := range []struct {
		release
		failed *int
	}{{old, &oldFailed}, {new, &newFailed}} {
		for userID, phone := range want {
			got, err := r.Phone(ctx, userID)
			if err == nil && got != phone {
				err = fmt.Errorf("user %d's phone is %q, last set to %q", userID, got, phone)
			}
			if err != nil {
				fail(r.failed, err)
			}
		}
	}
	return oldFailed, newFailed, firstErr
}

// undefinedColumn reports whether err is PostgreSQL's "column does not
// exist" (SQLSTATE 42703).
func undefinedColumn(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42703"
}

// TestRenameInOneStepBreaksTheRunningRelease: before the rename, the new
// release cannot run (its column is not there yet); after it, the old one,
// still running while the new one rolls out, fails on every call.
func TestRenameInOneStepBreaksTheRunningRelease(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	old, new := shop.OldRelease{DB: db}, shop.NewRelease{DB: db}

	oldFailed, newFailed, err := useBoth(t, old, new, 1)
	require.Zero(t, oldFailed)
	require.Positive(t, newFailed, "the new release fails before the rename")
	require.True(t, undefinedColumn(err), "%v", err)

	require.NoError(t, naive.Migrate(ctx, db, naive.RenamePhone))
	oldFailed, newFailed, err = useBoth(t, old, new, 2)
	t.Logf("after the rename: %d calls of the old release failed, %d of the new; the first: %v", oldFailed, newFailed, err)
	require.Zero(t, newFailed)
	require.Positive(t, oldFailed)
	require.True(t, undefinedColumn(err), "%v", err)
}

// TestExpandAndContractKeepsBothReleasesWorking: after the expand, both
// releases run at once against one schema, and each reads what the other
// wrote; after the backfill, the new release reads every phone the old one
// ever set; after the contract, run once the old release is gone, the new
// one still reads them all.
func TestExpandAndContractKeepsBothReleasesWorking(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	old, new := shop.OldRelease{DB: db}, shop.NewRelease{DB: db}
	// A phone the old release set long ago, before the expand.
	const untouched = int64(100)
	require.NoError(t, old.SetPhone(ctx, untouched, "+44 20 7946 0000"))

	require.NoError(t, scalable.Migrate(ctx, db, scalable.ExpandPhone))
	for round := range 3 {
		oldFailed, newFailed, err := useBoth(t, old, new, round)
		require.NoError(t, err)
		require.Zero(t, oldFailed+newFailed)
	}
	got, err := new.Phone(ctx, untouched)
	require.NoError(t, err)
	require.Empty(t, got, "not backfilled yet: the new column has only what was written since the expand")

	require.NoError(t, scalable.Migrate(ctx, db, scalable.BackfillPhone))
	got, err = new.Phone(ctx, untouched)
	require.NoError(t, err)
	require.Equal(t, "+44 20 7946 0000", got)
	requireColumnsAgree(t, db)
	oldFailed, newFailed, err := useBoth(t, old, new, 3)
	require.NoError(t, err)
	require.Zero(t, oldFailed+newFailed)

	// The old release is retired; then the contract.
	require.NoError(t, scalable.Migrate(ctx, db, scalable.ContractPhone))
	require.False(t, hasColumn(t, db, "users", "phone"))
	for _, userID := range append([]int64{untouched}, renameUsers...) {
		_, err := new.Phone(ctx, userID)
		require.NoError(t, err)
	}
	require.NoError(t, new.SetPhone(ctx, untouched, "+44 20 7946 0001"))
}

// requireColumnsAgree checks that every user's phone and phone_number hold
// the same.
func requireColumnsAgree(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	var differ, phones int64
	require.NoError(t, db.QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE phone IS DISTINCT FROM phone_number), count(phone_number) FROM users`).Scan(&differ, &phones))
	require.Zero(t, differ)
	require.Positive(t, phones)
}

// TestReleasesRefuseAnUnknownUser: both releases name a user who does not
// exist, for a write and for a read, and change nothing.
func TestReleasesRefuseAnUnknownUser(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, scalable.Migrate(ctx, db, scalable.ExpandPhone)) // both columns, so every release can run
	for name, r := range map[string]release{"old": shop.OldRelease{DB: db}, "new": shop.NewRelease{DB: db}} {
		for _, userID := range []int64{0, -1, 1 << 62} {
			require.ErrorIs(t, r.SetPhone(ctx, userID, "+44 20 7946 0000"), shop.ErrUserNotFound, "%s, user %d", name, userID)
			_, err := r.Phone(ctx, userID)
			require.ErrorIs(t, err, shop.ErrUserNotFound, "%s, user %d", name, userID)
		}
	}
}

// TestContractCannotBeUndone: goose's down of the contract (migration 6)
// fails, saying why, and goose still records version 6, with phone gone:
// no rollback is recorded that did not happen.
func TestContractCannotBeUndone(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, scalable.Migrate(ctx, db, scalable.ContractPhone))
	// The scalable side's SQL files, as goose reads them, and its Go
	// migrations (2 and 5) as versions only: only the last is undone.
	applied := &goose.GoFunc{RunDB: func(context.Context, *sql.DB) error { return nil }}
	provider, err := goosepg.NewProvider(db, os.DirFS("../../scalable/migrations"), "sql",
		goose.WithGoMigrations(
			goose.NewGoMigration(scalable.BackfillTotal, applied, nil),
			goose.NewGoMigration(scalable.BackfillPhone, applied, nil)))
	require.NoError(t, err)
	defer provider.Close()

	_, err = provider.Down(ctx)
	require.ErrorContains(t, err, "cannot be undone")
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr) && pgErr.Code == "0A000", "feature_not_supported: %v", err)
	version, err := provider.GetDBVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, scalable.ContractPhone, version, "goose records no rollback")
	require.False(t, hasColumn(t, db, "users", "phone"))
	require.True(t, hasColumn(t, db, "users", "phone_number"))
}
