// Package writes imports orders so that the cost of an import grows with its
// bytes, not with its rows times a round trip and a commit. Every import here
// is all or nothing: it checks every order in Go first, writes them all in
// one transaction, and, if the database refuses a row, writes none and
// returns a [shop.RowError] naming every bad row.
//
// The ways to write many rows, side by side, from the recommended one:
//
//   - ImportOrders: COPY (pgx's CopyFrom), the protocol built for bulk
//     loads: rows stream to the server with no answer to wait for.
//   - ImportOrdersInOneTransaction: the naive loop inside one transaction;
//     commits fall from one a row to one, round trips do not.
//   - ImportOrdersMultiRow: INSERT … VALUES (…), (…), … as many rows a
//     statement as its 65,535 parameters allow.
//   - ImportOrdersUnnest: INSERT … SELECT FROM unnest($1, $2, …), a column
//     an array: one statement a table, whatever the rows.
//   - ImportOrdersBatch: the naive INSERTs queued in a pgx.Batch, sent at
//     once: one round trip, as many statements as rows.
//   - UpsertOrders: for a sync that must be safe to run twice, INSERT … ON
//     CONFLICT … DO UPDATE from unnest.
//
// ImportCSV imports a file of orders: it reads the whole file first, so that
// a malformed line refuses the file before a row is written, then COPYs it.
//
// Compare with works-vs-scales/naive/writes.
package writes
