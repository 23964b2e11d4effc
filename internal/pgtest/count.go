package pgtest

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Counts is what the database was asked to do by the calls made with one
// context: statements sent, round trips waited for, rows returned or changed.
// It is safe for concurrent use.
type Counts struct {
	statements atomic.Int64
	roundTrips atomic.Int64
	rows       atomic.Int64
	commits    atomic.Int64
	prepares   atomic.Int64
}

// Statements is how many SQL statements were sent, one per query and one per
// query queued in a batch.
func (c *Counts) Statements() int64 { return c.statements.Load() }

// RoundTrips is how many times the caller sent work and waited for the answer:
// one per query and one per batch, however many statements it holds. It does
// not count Prepares, the round trip before a query whose SQL the connection
// has not seen (add them for every wait); nor the one a batch of new
// statements makes to describe them.
func (c *Counts) RoundTrips() int64 { return c.roundTrips.Load() }

// Prepares is how many statements pgx prepared on the server before running
// them, a round trip each: the first run of a SQL text on a connection, and
// every run of a SQL text that differs each time (values pasted in rather than
// passed as parameters), which pgx's statement cache can never hold.
func (c *Counts) Prepares() int64 { return c.prepares.Load() }

// Rows is how many rows the statements returned (SELECT) or changed.
func (c *Counts) Rows() int64 { return c.rows.Load() }

// Commits is how many transactions the calls committed, as
// pg_stat_database's xact_commit counts them: a COMMIT, and each statement,
// batch or COPY that succeeded outside a transaction (autocommit; a batch
// outside a transaction is one implicit transaction), a read included. Each
// that wrote is a WAL flush the caller waits for; a read flushes nothing.
func (c *Counts) Commits() int64 { return c.commits.Load() }

// countCommit counts a commit if the call that just ended, without error,
// left the connection outside a transaction, other than by rolling back.
func (c *Counts) countCommit(conn *pgx.Conn, err error, tag pgconn.CommandTag) {
	if err == nil && conn != nil && conn.PgConn().TxStatus() == 'I' && tag.String() != "ROLLBACK" {
		c.commits.Add(1)
	}
}

type countsKey struct{}

// CountQueries returns a context whose queries, on a pool made by this package,
// are added to the returned Counts.
func CountQueries(ctx context.Context) (context.Context, *Counts) {
	counts := new(Counts)
	return context.WithValue(ctx, countsKey{}, counts), counts
}

func countsFrom(ctx context.Context) *Counts {
	counts, _ := ctx.Value(countsKey{}).(*Counts)
	return counts
}

// tracer adds what pgx does on a connection to the Counts in the context.
type tracer struct{}

var (
	_ pgx.QueryTracer   = tracer{}
	_ pgx.BatchTracer   = tracer{}
	_ pgx.PrepareTracer = tracer{}
)

func (tracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

// TracePrepareEnd counts a prepare that went to the server: not one the
// connection had made already.
func (tracer) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, data pgx.TracePrepareEndData) {
	if c := countsFrom(ctx); c != nil && !data.AlreadyPrepared {
		c.prepares.Add(1)
	}
}

func (tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if c := countsFrom(ctx); c != nil {
		c.statements.Add(1)
		c.roundTrips.Add(1)
	}
	if r := recordingFrom(ctx); r != nil {
		r.add(Query{SQL: data.SQL, Args: data.Args})
	}
	return ctx
}

func (tracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if c := countsFrom(ctx); c != nil {
		c.rows.Add(data.CommandTag.RowsAffected())
		c.countCommit(conn, data.Err, data.CommandTag)
	}
}

func (tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	if c := countsFrom(ctx); c != nil {
		c.roundTrips.Add(1)
	}
	return ctx
}

func (tracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if c := countsFrom(ctx); c != nil {
		c.statements.Add(1)
		c.rows.Add(data.CommandTag.RowsAffected())
	}
	if r := recordingFrom(ctx); r != nil {
		r.add(Query{SQL: data.SQL, Args: data.Args})
	}
}

func (tracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	if c := countsFrom(ctx); c != nil {
		c.countCommit(conn, data.Err, pgconn.CommandTag{})
	}
}
