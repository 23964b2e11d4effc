package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// A sampler counts the database's busy backends.
type sampler interface {
	activeBackends(ctx context.Context) (int, error)
	version(ctx context.Context) (string, error)
	Close()
}

// monitor samples the service's database while a step runs, on a
// connection of its own. A connection lost (an administrator's
// pg_terminate_backend, 57P01; a restart) costs the step its samples, not
// the run: the next step connects again.
type monitor struct {
	connect func(ctx context.Context) (sampler, error) // nil: no monitoring
	logs    io.Writer
	conn    sampler
	lost    int // connections lost so far
}

func newMonitor(url string, logs io.Writer) *monitor {
	m := &monitor{logs: logs}
	if url != "" {
		m.connect = func(ctx context.Context) (sampler, error) {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return nil, err
			}
			return pgSampler{conn}, nil
		}
	}
	return m
}

// ready returns the monitoring connection, connecting if there is none;
// nil when there is no monitoring, or it cannot connect now.
func (m *monitor) ready(ctx context.Context) sampler {
	if m.conn == nil && m.connect != nil {
		conn, err := m.connect(ctx)
		if err != nil {
			fmt.Fprintf(m.logs, "load: monitoring: cannot connect, this step has no backend samples: %v\n", err)
			return nil
		}
		m.conn = conn
	}
	return m.conn
}

// Close closes the monitoring connection.
func (m *monitor) Close() {
	if m.conn != nil {
		m.conn.Close()
		m.conn = nil
	}
}

// samples are a step's samples of busy backends; ok is false when there is
// no monitoring or its connection was lost during the step.
type samples struct {
	busy []int
	ok   bool
}

// during samples every 10 ms until the returned function is called, which
// returns the samples.
func (m *monitor) during(ctx context.Context) func() samples {
	conn := m.ready(ctx)
	if conn == nil {
		return func() samples { return samples{} }
	}
	sampleCtx, stop := context.WithCancel(ctx)
	var s samples
	var lost error
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			// The query runs on ctx, not sampleCtx: pgx closes a
			// connection whose query is cancelled.
			n, err := conn.activeBackends(ctx)
			if err != nil {
				lost = err
				return
			}
			s.busy = append(s.busy, n)
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return func() samples {
		stop()
		wg.Wait()
		if lost != nil {
			if ctx.Err() == nil {
				m.lost++
				fmt.Fprintf(m.logs, "load: monitoring connection lost, this step has no backend samples; the load goes on: %v\n", lost)
			}
			m.conn.Close()
			m.conn = nil
			return samples{}
		}
		s.ok = len(s.busy) > 0
		return s
	}
}

// pgSampler samples on a pgx connection.
type pgSampler struct{ conn *pgx.Conn }

func (p pgSampler) activeBackends(ctx context.Context) (int, error) {
	// Backends of this database running a statement, this one aside.
	const activeQuery = `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`
	var n int
	if err := p.conn.QueryRow(ctx, activeQuery).Scan(&n); err != nil {
		return 0, fmt.Errorf("sample the active backends: %w", err)
	}
	return n, nil
}

func (p pgSampler) version(ctx context.Context) (string, error) {
	var v string
	if err := p.conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", fmt.Errorf("server version: %w", err)
	}
	return v, nil
}

func (p pgSampler) Close() { p.conn.Close(context.Background()) }
