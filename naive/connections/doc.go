// Package connections answers the shop's requests the way that works first,
// with the connections used the simplest way: Shop opens a connection for each
// request and closes it after, and Payments keeps its transaction, and so its
// connection, open while the payment gateway takes the money.
//
// Each is correct. A connection costs a TCP handshake, PostgreSQL's startup
// and authentication and a new server process, several round trips before
// the first query: paid on every request, it is most of the request. A
// connection held across a call to a slow service is one the other requests
// cannot use: under load the pool runs dry, and queries that take a
// millisecond wait for payments that take a second.
//
// Compare with works-vs-scales/scalable/connections.
package connections
