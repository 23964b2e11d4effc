// Package partitioning keeps a decade of orders the way that scales: orders
// and their items in native declarative partitions, a month each, so that a
// query on recent days reads only their months (partition pruning), and
// retention detaches and drops whole months (DETACH PARTITION … CONCURRENTLY,
// then DROP TABLE): no row deleted, no dead tuple, and no row in the WAL, only
// the catalog's changes. The months to come are made ahead of time, in Go, by
// PrepareMonths, which attaches them without queueing readers; a query that
// does not filter on created_at plans and reads every month.
//
// The queries it answers, and the input they refuse, are shop/history's, the
// same on both sides: the tables under them differ.
//
// Compare with works-vs-scales/naive/partitioning.
package partitioning
