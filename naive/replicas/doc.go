// Package replicas keeps the shop's orders on a primary and a streaming read
// replica, the way that works first: every write goes to the primary, every
// read to the replica. It costs the primary no reads at all.
//
// A replica applies the primary's writes a little later, from under a
// millisecond to seconds behind: a user who places an order and then lists
// their orders reads from a replica that may not have it yet, and their new
// order is missing (read-your-writes is broken).
//
// Compare with works-vs-scales/scalable/replicas.
package replicas
