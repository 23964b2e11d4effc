package pgtest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Query is a statement as it was sent, with its arguments.
type Query struct {
	SQL  string
	Args []any
}

// Recording is the statements sent with one context, in order. It is safe for
// concurrent use.
type Recording struct {
	mu      sync.Mutex
	queries []Query
}

// Queries returns the statements recorded so far.
func (r *Recording) Queries() []Query {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Query(nil), r.queries...)
}

func (r *Recording) add(q Query) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, q)
}

type recordingKey struct{}

// RecordQueries returns a context whose queries, on a pool made by this
// package, are recorded with their arguments, for a test to look into. A
// benchmark counts with CountQueries instead: recording costs memory.
func RecordQueries(ctx context.Context) (context.Context, *Recording) {
	recording := new(Recording)
	return context.WithValue(ctx, recordingKey{}, recording), recording
}

func recordingFrom(ctx context.Context) *Recording {
	recording, _ := ctx.Value(recordingKey{}).(*Recording)
	return recording
}

// Plan is a node of a plan from EXPLAIN (ANALYZE, FORMAT JSON).
type Plan struct {
	NodeType     string  `json:"Node Type"`
	RelationName string  `json:"Relation Name"`
	IndexName    string  `json:"Index Name"`
	ActualRows   float64 `json:"Actual Rows"`
	ActualLoops  float64 `json:"Actual Loops"`
	// RowsRemovedByFilter is rows read but failing the node's Filter.
	RowsRemovedByFilter float64 `json:"Rows Removed by Filter"`
	Plans               []Plan  `json:"Plans"`
}

// Explain runs the query under EXPLAIN (ANALYZE, FORMAT JSON) and returns
// its plan: what the database did, rows included. The query runs for real.
func Explain(ctx context.Context, db *pgxpool.Pool, q Query) (Plan, error) {
	var out []struct {
		Plan Plan `json:"Plan"`
	}
	rows, err := db.Query(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+q.SQL, q.Args...)
	if err != nil {
		return Plan{}, fmt.Errorf("explain %q: %w", q.SQL, err)
	}
	plan, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[[]byte])
	if err != nil {
		return Plan{}, fmt.Errorf("explain %q: %w", q.SQL, err)
	}
	if err := json.Unmarshal(plan, &out); err != nil || len(out) != 1 {
		return Plan{}, fmt.Errorf("explain %q: read the plan: %v", q.SQL, err)
	}
	return out[0].Plan, nil
}

// Walk calls visit for the plan and every node under it, depth first.
func (p Plan) Walk(visit func(Plan)) {
	visit(p)
	for _, child := range p.Plans {
		child.Walk(visit)
	}
}

// RowsRead is how many rows the plan's scans of table read, over all their
// loops: those they passed on, and those their filter threw away. A LIMIT or
// OFFSET above a scan throws away more; those were read too.
func (p Plan) RowsRead(table string) int64 {
	var rows float64
	p.Walk(func(node Plan) {
		if node.RelationName == table {
			rows += (node.ActualRows + node.RowsRemovedByFilter) * max(node.ActualLoops, 1)
		}
	})
	return int64(rows)
}

// Scans returns the scan node types on table, e.g. ["Seq Scan"].
func (p Plan) Scans(table string) []string {
	var scans []string
	p.Walk(func(node Plan) {
		if node.RelationName == table {
			scans = append(scans, node.NodeType)
		}
	})
	return scans
}
