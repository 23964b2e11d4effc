// Package nplusone loads a user's orders and the feed the way that scales: the
// database joins the rows and sends them back in one round trip, whatever the
// number of orders or posts.
//
// Compare with works-vs-scales/naive/nplusone, which makes a query per order
// and two per post. GetUserOrdersBatch is the middle road: the naive queries,
// sent together in two round trips.
package nplusone
