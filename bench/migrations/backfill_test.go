package migrations

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	scalable "works-vs-scales/scalable/migrations"
	"works-vs-scales/shop"
)

// lockOrder locks the order with id, as a request updating it would, until
// release (benchkit.HoldLock).
func lockOrder(t *testing.T, db *pgxpool.Pool, id int64) (release func()) {
	t.Helper()
	return benchkit.HoldLock(t, db, `SELECT FROM orders WHERE id = $1 FOR UPDATE`, id)
}

// backfillProgress says, while a backfill waits for the locked order, how
// many orders have a committed total, and how many orders other sessions
// hold locked (the test's one included), counted by what a FOR UPDATE SKIP
// LOCKED skips.
func backfillProgress(t *testing.T, db *pgxpool.Pool) (committed, locked int64) {
	t.Helper()
	const progress = `SELECT count(*) FILTER (WHERE total_cents IS NOT NULL),
		count(*) - (SELECT count(*) FROM (SELECT FROM orders FOR UPDATE SKIP LOCKED) unlocked)
		FROM orders`
	require.NoError(t, db.QueryRow(context.Background(), progress).Scan(&committed, &locked))
	return committed, locked
}

// backfillBatch is the scalable backfill's batch in these tests: the orders
// it locks and commits at once.
const backfillBatch = 500

// TestBackfillLocksAndCommits: the order with the highest id is locked by a
// request when the backfill reaches it. The naive backfill, one UPDATE, then
// holds every order it updated so far locked, and has committed none of
// them; the scalable one has committed every batch before the last, and
// holds fewer than a batch of orders locked.
func TestBackfillLocksAndCommits(t *testing.T) {
	ctx := context.Background()
	for _, impl := range impls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			require.NoError(t, impl.migrate(ctx, db, impl.addTotal))
			var first, last, orders int64
			require.NoError(t, db.QueryRow(ctx, `SELECT min(id), max(id), count(*) FROM orders`).Scan(&first, &last, &orders))
			release := lockOrder(t, db, last)

			migrate := impl.migrate
			if impl.name == "scalable" {
				migrate = scalable.Migrator{BatchSize: backfillBatch, Pause: -1}.Migrate
			}
			migrated := make(chan error, 1)
			go func() { migrated <- migrate(ctx, db, impl.backfillTotal) }()
			benchkit.WaitForLockWaiters(t, db, 1) // the backfill, at the locked order

			committed, locked := backfillProgress(t, db)
			lockedByBackfill := locked - 1 // the test holds the last order
			t.Logf("%s: %d of %d orders committed, %d locked by the backfill, while it waits for order %d", impl.name, committed, orders, lockedByBackfill, last)
			switch impl.name {
			case "naive":
				require.Zero(t, committed, "one UPDATE commits nothing until it has every row")
				require.Greater(t, lockedByBackfill, int64(backfillBatch), "one UPDATE holds every row it updated so far")
			case "scalable":
				lastBatch := first + (last-first)/backfillBatch*backfillBatch
				var before int64
				require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id < $1`, lastBatch).Scan(&before))
				require.Equal(t, before, committed, "every batch before the last is committed")
				require.Less(t, lockedByBackfill, int64(backfillBatch), "a batch holds at most its own rows")
			}

			release()
			require.NoError(t, <-migrated)
			_, _, missing := totalsDigest(t, db)
			require.Zero(t, missing)
		})
	}
}

// TestBackfillResumes: a batched backfill stopped half way (here: after the
// batch that meets the locked order is cancelled) keeps the batches it committed, and the next
// run fills the rest.
func TestBackfillResumes(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	migrator := scalable.Migrator{BatchSize: backfillBatch, Pause: -1}
	require.NoError(t, migrator.Migrate(ctx, db, scalable.AddTotal))
	var last int64
	require.NoError(t, db.QueryRow(ctx, `SELECT max(id) FROM orders`).Scan(&last))
	release := lockOrder(t, db, last)

	migrated := make(chan error, 1)
	go func() { migrated <- migrator.Migrate(ctx, db, scalable.BackfillTotal) }()
	benchkit.WaitForLockWaiters(t, db, 1)
	require.Equal(t, 1, benchkit.CancelLockWaiters(t, db))
	err := <-migrated
	require.True(t, pgtest.IsQueryCanceled(err), "the server cancelled the batch: %v", err)
	release()
	_, _, missing := totalsDigest(t, db)
	require.Positive(t, missing, "stopped before the last batch")
	require.Less(t, missing, int64(backfillBatch), "the batches before it are kept")

	require.NoError(t, migrator.Migrate(ctx, db, scalable.BackfillTotal))
	_, _, missing = totalsDigest(t, db)
	require.Zero(t, missing)
}
