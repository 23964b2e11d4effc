package migrations

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	scalable "works-vs-scales/scalable/migrations"
	"works-vs-scales/shop"
)

// TestACancelledMigrationChangesNothing: a context cancelled before Migrate
// is an error that says so, on both sides, and the schema is as it was.
func TestACancelledMigrationChangesNothing(t *testing.T) {
	for _, impl := range impls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := impl.migrate(ctx, db, impl.indexTotal)
			require.ErrorIs(t, err, context.Canceled)
			require.False(t, hasColumn(t, db, "orders", "total_cents"), "a cancelled migration added the column")
		})
	}
}

// TestTwoScalableMigratorsAtOnceBothSucceed: two servers starting at once
// both migrate; goose's session lock makes the second wait for the first,
// and both end with the schema migrated once.
func TestTwoScalableMigratorsAtOnceBothSucceed(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	start := make(chan struct{})
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = scalable.Migrate(ctx, db, scalable.IndexTotal)
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	_, _, missing := totalsDigest(t, db)
	require.Zero(t, missing, "orders without a total")
	var applied int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id = $1`, scalable.IndexTotal).Scan(&applied))
	require.Equal(t, 1, applied, "the index's migration recorded once")
}

// TestReleasesRefuseAPhoneTheDatabaseCannotStore: a phone number with a NUL
// byte or bytes that are not UTF-8 is the database's error, on every
// release, and the user's phone stays as it was.
func TestReleasesRefuseAPhoneTheDatabaseCannotStore(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, scalable.Migrate(ctx, db, scalable.ExpandPhone))
	const user, phone = 1, "+44 20 7946 0000"
	require.NoError(t, shop.NewRelease{DB: db}.SetPhone(ctx, user, phone))
	for name, r := range map[string]release{"old": shop.OldRelease{DB: db}, "new": shop.NewRelease{DB: db}} {
		for _, bad := range []string{"+44\x00", "\xff\xfe"} {
			require.Error(t, r.SetPhone(ctx, user, bad), "%s, phone %q", name, bad)
		}
		got, err := r.Phone(ctx, user)
		require.NoError(t, err, name)
		require.Equal(t, phone, got, name)
	}
}

// TestACancelledScalableMigrationLeavesNothingRunning: a migration
// cancelled while CREATE INDEX CONCURRENTLY waits for a writer stops in the
// server too (pgx closes the connection and sends the server a cancel
// request): within moments no statement of it still waits there, and
// goose's session lock is free, so the next migrator does not wait for a
// migration that returned; the INVALID index the build left is dropped and
// built again.
func TestACancelledScalableMigrationLeavesNothingRunning(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, scalable.Migrate(ctx, db, scalable.BackfillTotal))
	releaseWriter := benchkit.LockTable(t, db, "orders", "ROW EXCLUSIVE") // an uncommitted write's lock

	migrateCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- scalable.Migrate(migrateCtx, db, scalable.IndexTotal) }()
	benchkit.WaitForLockWaiters(t, db, 1) // the index's build waits for the writer
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	admin := pgtest.Shop(t, shop.Small)
	const left = `SELECT count(*) FROM pg_stat_activity a
		WHERE a.datname = $1 AND a.backend_type = 'client backend' AND (a.wait_event_type = 'Lock'
		   OR EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory'))`
	// The server stops the statement when it reads the cancel request,
	// and the session ends when its connection closes: a moment.
	var n int
	var err error
	assert.Eventually(t, func() bool {
		err = admin.QueryRow(ctx, left, db.Config().ConnConfig.Database).Scan(&n)
		return err == nil && n == 0
	}, 5*time.Second, 5*time.Millisecond, "sessions of the cancelled migration still waiting or holding an advisory lock")
	require.NoError(t, err)
	releaseWriter()
	require.NoError(t, scalable.Migrate(ctx, db, scalable.IndexTotal))
	invalid, err := scalable.InvalidIndexes(ctx, db)
	require.NoError(t, err)
	require.Empty(t, invalid, "the cancelled build's INVALID index dropped and built again")
}
