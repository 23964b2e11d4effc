package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestAnInterruptDropsACopyUnderWay: what the signal handler drops
// (dropRun) includes a copy still being made when the signal came, and the
// run makes no copy after it. It listed the run's databases at once: a
// CREATE DATABASE still running was not among them, finished after, and was
// left for the next run (two go test processes of bench/partitioning, one
// interrupted with SIGINT, left its clone_9).
func TestAnInterruptDropsACopyUnderWay(t *testing.T) {
	runs := newTestRuns(t)
	h := runs.start(t)
	ctx := context.Background()
	copyFor(t, h, "clone_1") // the template made, and a copy of it
	holder, watcher := observer(t, h.server.url), observer(t, h.server.url)
	// An open COMMENT ON DATABASE holds a lock on the template that CREATE
	// DATABASE … TEMPLATE waits for.
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, "COMMENT ON DATABASE "+ident(templateName(h.prefix, tinyShop))+" IS 'held by the test'")
	require.NoError(t, err)
	copied := make(chan error, 1)
	go func() { copied <- h.copyOf(ctx, tinyShop, runName(h.prefix, h.runID, "clone_2")) }()
	waitFor(t, "the copy to wait for the template", func() bool {
		var n int
		require.NoError(t, watcher.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'object' AND NOT granted`).Scan(&n))
		return n > 0
	})
	dropped := make(chan error, 1)
	go func() { dropped <- h.dropRun(ctx) }()
	// A dropRun that does not wait for the copy lists and drops at once;
	// one that waits is let go by the rollback below either way.
	var dropErr error
	early := false
	select {
	case dropErr = <-dropped:
		early = true
	case <-time.After(time.Second):
	}
	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, <-copied, "the copy under way is made")
	if !early {
		dropErr = <-dropped
	}
	require.NoError(t, dropErr)
	rows, err := watcher.Query(ctx, `SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1`, runName(h.prefix, h.runID, ""))
	require.NoError(t, err)
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, left, "the run's databases, the copy under way included")
	require.Error(t, h.copyOf(ctx, tinyShop, runName(h.prefix, h.runID, "clone_3")), "a copy asked after the interrupt")
}
