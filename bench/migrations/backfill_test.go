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

// addItem adds a line to the order with id, as a release placing or
// changing an order does, in a transaction of its own.
func addItem(t *testing.T, db *pgxpool.Pool, orderID int64) {
	t.Helper()
	const add = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
		SELECT $1, coalesce(max(line_no), 0) + 1, 1, 2, 1234 FROM order_items WHERE order_id = $1`
	_, err := db.Exec(context.Background(), add, orderID)
	require.NoError(t, err, "add an item to order %d", orderID)
}

// wrongTotals counts the orders without a total, and the orders whose total
// is not the sum of their items.
func wrongTotals(t *testing.T, db *pgxpool.Pool) (missing, wrong int64) {
	t.Helper()
	const count = `SELECT count(*) FILTER (WHERE o.total_cents IS NULL),
		count(*) FILTER (WHERE o.total_cents <> coalesce(s.total, 0))
		FROM orders o
		LEFT JOIN (SELECT order_id, sum(quantity * price_cents) AS total FROM order_items GROUP BY order_id) s
		  ON s.order_id = o.id`
	require.NoError(t, db.QueryRow(context.Background(), count).Scan(&missing, &wrong))
	return missing, wrong
}

// TestBackfillKeepsUpWithWrites: the first order of the backfill's second
// batch is locked by a request, and while the backfill waits for it, a
// release writes: an item to the first order (behind the backfill), an item
// to the last (ahead of it), and a new order with an item. Once the
// migration is recorded, the scalable side has every total right: migration
// 1's triggers set the totals of what is written from then on, during the
// backfill and after it. The naive
// one-statement UPDATE sums with the snapshot it started with, and nothing
// follows it: the new order stays without a total, and both old orders keep
// a total without their new item.
func TestBackfillKeepsUpWithWrites(t *testing.T) {
	ctx := context.Background()
	for _, impl := range impls {
		t.Run(benchkit.Name("impl", impl.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			require.NoError(t, impl.migrate(ctx, db, impl.addTotal))
			var first, mid, last int64
			require.NoError(t, db.QueryRow(ctx, `SELECT min(id), max(id) FROM orders`).Scan(&first, &last))
			require.NoError(t, db.QueryRow(ctx, `SELECT min(id) FROM orders WHERE id >= $1`, first+backfillBatch).Scan(&mid))
			require.Less(t, mid+backfillBatch, last, "the shop has at least three batches of orders")
			release := lockOrder(t, db, mid)

			migrate := impl.migrate
			if impl.name == "scalable" {
				migrate = scalable.Migrator{BatchSize: backfillBatch, Pause: -1}.Migrate
			}
			migrated := make(chan error, 1)
			go func() { migrated <- migrate(ctx, db, impl.backfillTotal) }()
			benchkit.WaitForLockWaiters(t, db, 1) // the backfill, at the second batch

			addItem(t, db, first)
			addItem(t, db, last)
			var placed int64
			require.NoError(t, db.QueryRow(ctx, `INSERT INTO orders (user_id, status, created_at) VALUES (1, 'pending', now()) RETURNING id`).Scan(&placed))
			addItem(t, db, placed)
			release()
			require.NoError(t, <-migrated)

			missing, wrong := wrongTotals(t, db)
			t.Logf("%s: %d orders without a total, %d with a wrong one, after writes during the backfill", impl.name, missing, wrong)
			switch impl.name {
			case "naive":
				require.Equal(t, int64(1), missing, "the order placed during the UPDATE has no total")
				require.Equal(t, int64(2), wrong, "the items added during the UPDATE are not in their orders' totals")
			case "scalable":
				require.Zero(t, missing, "every order has a total")
				require.Zero(t, wrong, "every total is its items' sum")
				// And from then on: the triggers outlive the backfill.
				addItem(t, db, placed)
				require.NoError(t, db.QueryRow(ctx, `INSERT INTO orders (user_id, status, created_at) VALUES (1, 'pending', now()) RETURNING id`).Scan(&placed))
				addItem(t, db, placed)
				missing, wrong = wrongTotals(t, db)
				require.Zero(t, missing+wrong, "an item added after the backfill is in its order's total")
				// An item moved to another order counts in that order's
				// total, and no longer in its own; a deleted one in none.
				_, err := db.Exec(ctx, `UPDATE order_items SET order_id = $2, line_no = line_no + 1000 WHERE order_id = $1`, placed, first)
				require.NoError(t, err)
				_, err = db.Exec(ctx, `DELETE FROM order_items WHERE order_id = $1 AND line_no = 1`, last)
				require.NoError(t, err)
				missing, wrong = wrongTotals(t, db)
				require.Zero(t, missing+wrong, "items moved and deleted after the backfill")
			}
		})
	}
}
