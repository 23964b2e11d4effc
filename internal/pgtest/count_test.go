package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
)

func TestCountsQueriesAndBatches(t *testing.T) {
	ctx, counts := CountQueries(context.Background())
	var trace tracer

	// Two queries, each its own round trip.
	for _, tag := range []string{"SELECT 3", "UPDATE 2"} {
		qctx := trace.TraceQueryStart(ctx, nil, pgx.TraceQueryStartData{})
		trace.TraceQueryEnd(qctx, nil, pgx.TraceQueryEndData{CommandTag: pgconn.NewCommandTag(tag)})
	}
	// A batch of three statements: one round trip.
	bctx := trace.TraceBatchStart(ctx, nil, pgx.TraceBatchStartData{})
	for range 3 {
		trace.TraceBatchQuery(bctx, nil, pgx.TraceBatchQueryData{CommandTag: pgconn.NewCommandTag("SELECT 1")})
	}
	trace.TraceBatchEnd(bctx, nil, pgx.TraceBatchEndData{})

	assert.Equal(t, int64(5), counts.Statements())
	assert.Equal(t, int64(3), counts.RoundTrips())
	assert.Equal(t, int64(3+2+3), counts.Rows())
}

func TestCountsPreparesThatReachTheServer(t *testing.T) {
	ctx, counts := CountQueries(context.Background())
	var trace tracer
	for _, already := range []bool{false, true, false} {
		pctx := trace.TracePrepareStart(ctx, nil, pgx.TracePrepareStartData{})
		trace.TracePrepareEnd(pctx, nil, pgx.TracePrepareEndData{AlreadyPrepared: already})
	}
	assert.Equal(t, int64(2), counts.Prepares())
	assert.Zero(t, counts.RoundTrips(), "prepares are counted apart")
}

func TestCountsOnlyTheirOwnContext(t *testing.T) {
	_, counts := CountQueries(context.Background())
	var trace tracer
	other := trace.TraceQueryStart(context.Background(), nil, pgx.TraceQueryStartData{})
	trace.TraceQueryEnd(other, nil, pgx.TraceQueryEndData{CommandTag: pgconn.NewCommandTag("SELECT 1")})
	assert.Zero(t, counts.Statements())
}
