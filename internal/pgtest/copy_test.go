package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
)

func TestCountsACopyAsOneStatementAndRoundTrip(t *testing.T) {
	ctx, counts := CountQueries(context.Background())
	var trace tracer
	cctx := trace.TraceCopyFromStart(ctx, nil, pgx.TraceCopyFromStartData{TableName: pgx.Identifier{"orders"}})
	trace.TraceCopyFromEnd(cctx, nil, pgx.TraceCopyFromEndData{CommandTag: pgconn.NewCommandTag("COPY 1000")})
	assert.Equal(t, int64(1), counts.Statements())
	assert.Equal(t, int64(1), counts.RoundTrips())
	assert.Equal(t, int64(1000), counts.Rows())
	assert.Zero(t, counts.Commits(), "no connection, no transaction status to read")
}
