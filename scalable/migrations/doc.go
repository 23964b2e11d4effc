// Package migrations changes the shop's schema under traffic: goose applies
// the same changes as works-vs-scales/naive/migrations, each written so that
// the service keeps answering while it runs.
//
// Each ALTER sets a lock_timeout for its own transaction and, when it gives
// up waiting, is retried after a growing pause, so the queries queued behind
// it go through in between; the column of the total comes with triggers
// that keep the total of every order written from then on; the index is
// built CONCURRENTLY, outside a transaction, and a build an interruption
// left INVALID is dropped first (a valid one is kept); backfills update a
// batch of rows by key range per transaction, with a pause between batches,
// and leave no row unset behind them; and the column rename is expand and
// contract: add the new column with a trigger that keeps both in step,
// backfill it, and drop the old one only once no running release reads it,
// for good (its Down refuses).
//
// What it costs: more migrations, a migration that can fail after its
// retries and must be run again, a backfill that takes longer in all, a
// trigger on every write to users while both columns live, and triggers on
// every write to orders and order_items while the total is kept.
package migrations
