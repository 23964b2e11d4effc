package pgtest

import (
	"context"

	"github.com/jackc/pgx/v5"
)

var _ pgx.CopyFromTracer = tracer{}

// TraceCopyFromStart counts a COPY (pgx's CopyFrom) as one statement and one
// round trip: the rows stream to the server without waiting for answers, and
// the caller waits once, for the end. (Its first run on a connection also
// asks the server for the table's column types, once, as a first query
// prepares: a round trip this does not count.)
func (tracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	if c := countsFrom(ctx); c != nil {
		c.statements.Add(1)
		c.roundTrips.Add(1)
	}
	return ctx
}

func (tracer) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	if c := countsFrom(ctx); c != nil {
		c.rows.Add(data.CommandTag.RowsAffected())
		c.countCommit(conn, data.Err, data.CommandTag)
	}
}
