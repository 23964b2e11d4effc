// Package nplusone loads a user's orders and the feed the way that works first:
// one query for the list, then one more for each thing in it. Its cost is
// 2+N queries for a user with N orders and 1+2N for a feed of N posts, each a
// round trip to the database.
//
// Compare with works-vs-scales/scalable/nplusone, which does the same in one.
package nplusone
