// Package replicas keeps the shop's orders on a primary and a streaming read
// replica, and reads a user's own writes: every write goes to the primary and
// remembers the primary's WAL position (LSN) after it; the user's next reads
// wait until the replica has replayed that position, then read from it, or,
// after MaxWait, read from the primary. Reads that tolerate a moment's
// staleness, and reads of users who wrote nothing lately, go straight to the
// replica. It costs a round trip after each write, one or more before a read
// that follows a write, and, while the replica is behind, reads on the primary.
//
// The positions live in the Store, so one server's users read their writes.
// With several servers behind a load balancer, the position would travel with
// the user's session (a cookie) instead. The replica pool reaches one replica:
// with several behind one address, a check on one and a read on another would
// prove nothing, so each replica needs its own check.
//
// Compare with works-vs-scales/naive/replicas.
package replicas
