// Package writes imports orders the way that works first: ImportOrders
// inserts each order and each of its items with an INSERT of its own, each in
// its own transaction (autocommit), and ImportCSV does the same for a file of
// orders, line by line.
//
// Each row costs a round trip and a commit (a flush of the WAL to disk), so
// an import of n rows waits n round trips and n flushes. A bad row stops the
// import where it is: the rows before it are in, the rows after it are not.
//
// Compare with works-vs-scales/scalable/writes.
package writes
