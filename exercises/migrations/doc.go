// Package migrations is lesson 20's exercise: yours to change.
//
// Migrate below applies three migrations with goose, as written: sql/00001
// adds orders.total_cents, sql/00002 fills it in, sql/00003 indexes it. Each
// works on an idle database, and each stops the shop under traffic. Change
// them (the SQL, how Migrate runs them, a Go migration of your own) so that
// the shop keeps answering while they run, then check:
//
//	go test -tags exercise -run '^TestExercise20$' ./bench/migrations
//
// The check migrates a copy of the shop one version at a time, each while a
// request holds a lock of its own: while a transaction that read orders is
// open, the queries on orders that arrive after the ALTER must still end
// (within 10 s), and the ALTER must apply once the reader ends; while an
// order is locked, the backfill must hold no more than 5,000 orders locked
// at once, and the shop writes meanwhile (an order placed, items added,
// changed and removed): once it ends, every order's total must be the sum
// of its items, those written during the backfill and after it included;
// while a write to orders is open, the writes after the index's build began
// must end; then the build is cancelled, as a deploy stopped half way would,
// the writer ends, and version 3 runs again: the index must be valid, no
// index of orders left INVALID, and those orders must have their totals.
// One answer is in works-vs-scales/scalable/migrations.
package migrations
