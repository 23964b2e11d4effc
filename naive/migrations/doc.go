// Package migrations changes the shop's schema the way that works first: goose
// applies each migration as written, in a transaction, with no limit on how
// long it waits for a lock. On an idle database each step takes moments.
//
// Under traffic each one stops the service: ALTER TABLE queues behind any
// open transaction on orders, and every query after it queues behind the
// ALTER; CREATE INDEX blocks every write to orders while it builds; the
// backfill updates every order in one transaction; and renaming a column in
// one step breaks the release still running, which reads the old name.
//
// Compare with works-vs-scales/scalable/migrations.
package migrations
