// Package partitioning keeps a decade of orders the way that works first: one
// orders table with a B-tree on created_at, and retention by one DELETE by
// date (the items first). The DELETE writes every row it removes to the WAL,
// leaves as many dead tuples for VACUUM, and holds its locks for as long as it
// runs; the B-tree grows with the decade, not with the week asked about.
//
// The queries it answers, and the input they refuse, are shop/history's, the
// same on both sides: the tables under them differ.
//
// Compare with works-vs-scales/scalable/partitioning.
package partitioning
