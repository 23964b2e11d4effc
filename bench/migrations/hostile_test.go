package migrations

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/migrations"
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
	require.NoError(t, scalable.NewRelease{DB: db}.SetPhone(ctx, user, phone))
	for name, r := range map[string]release{
		"naive old": naive.OldRelease{DB: db}, "naive new": naive.NewRelease{DB: db},
		"scalable old": scalable.OldRelease{DB: db}, "scalable new": scalable.NewRelease{DB: db},
	} {
		for _, bad := range []string{"+44\x00", "\xff\xfe"} {
			require.Error(t, r.SetPhone(ctx, user, bad), "%s, phone %q", name, bad)
		}
		got, err := r.Phone(ctx, user)
		require.NoError(t, err, name)
		require.Equal(t, phone, got, name)
	}
}
