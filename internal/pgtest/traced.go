package pgtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// ShopCloneTraced is [ShopClone] whose pool also hands every query, batch and
// connection event to tr (a pgx.QueryTracer, and any of pgx's other tracer
// interfaces it implements), after the harness's own tracer has counted it:
// [CountQueries] and [Record] keep working on it.
func ShopCloneTraced(tb testing.TB, s shop.Scale, tr pgx.QueryTracer) *pgxpool.Pool {
	tb.Helper()
	if tr == nil {
		tb.Fatal("pgtest: ShopCloneTraced with a nil tracer")
	}
	h := open(tb)
	name := h.copyForTest(tb, s)
	pool, err := h.newTracedPool(context.Background(), name, tr)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before the drop: cleanups run last-in, first-out
	return pool
}

// newTracedPool is newPool, through the WORKSHOP_RTT proxy if there is one,
// with tr after the harness's tracer.
func (h *harness) newTracedPool(ctx context.Context, name string, tr pgx.QueryTracer) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(h.server.url)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", workshopenv.DatabaseURL, err)
	}
	cfg.ConnConfig.Database = name
	if h.proxy != nil {
		cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(h.proxy.Addr().Port)
		cfg.ConnConfig.Fallbacks = nil
	}
	cfg.ConnConfig.Tracer = multitracer.New(tracer{}, tr)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s: %w", name, err)
	}
	return pool, nil
}
