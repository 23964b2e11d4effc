// Package connections answers the shop's requests with connections that last:
// Shop keeps a pool of them, opened once and used by request after request,
// and Payments holds one only for the statements that need it, never while
// the payment gateway works.
//
// Shop's pool runs statements in pgx's QueryExecModeCacheDescribe, leaving
// no prepared statement on a server connection between transactions, so the
// same code runs behind PgBouncer in transaction-pooling mode, where one
// client's next transaction may run on another server connection.
//
// Compare with works-vs-scales/naive/connections.
package connections
