// Package migrations changes the shop's schema under traffic: goose applies
// the same changes as works-vs-scales/naive/migrations, each written so that
// the service keeps answering while it runs.
//
// Each ALTER sets a lock_timeout for its own transaction and, when it gives
// up waiting, is retried after a growing pause, so the queries queued behind
// it go through in between; the index is built CONCURRENTLY, outside a
// transaction, and a build an interruption left INVALID is dropped first;
// backfills update a batch of rows by key range per transaction, with a
// pause between batches; and the column rename is expand and contract: add
// the new column with a trigger that keeps both in step, backfill it, and
// drop the old one only once no running release reads it.
//
// What it costs: more migrations, a migration that can fail after its
// retries and must be run again, a backfill that takes longer in all, and a
// trigger on every write to users while both columns live.
package migrations
