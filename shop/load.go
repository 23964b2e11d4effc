package shop

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Schema creates the shop's tables, empty and without keys or indexes.
//
//go:embed schema.sql
var Schema string

// Indexes adds the keys, foreign keys and indexes, once the rows are loaded.
//
//go:embed indexes.sql
var Indexes string

// table is one table's generated rows, in the column order of schema.sql.
type table struct {
	name    string
	columns []string
	rows    func(Scale, uint64) func() ([]any, error)
}

var tables = []table{
	{"users", []string{"id", "name", "email", "phone", "created_at"}, userRows},
	{"products", []string{"id", "name", "category", "price_cents", "stock"}, productRows},
	{"orders", []string{"id", "user_id", "status", "created_at"}, orderRows},
	{"order_items", []string{"order_id", "line_no", "product_id", "quantity", "price_cents"}, orderItemRows},
	{"posts", []string{"id", "author_id", "title", "created_at"}, postRows},
	{"comments", []string{"id", "post_id", "author_id", "body", "created_at"}, commentRows},
}

// Load creates the shop's schema in an empty database and fills it with the rows
// generated for the scale and seed, one table after another on conn: COPY
// into bare tables, then keys and indexes, then VACUUM and ANALYZE. The
// harness seeds its templates with [LoadConcurrently], which is faster.
func Load(ctx context.Context, conn *pgx.Conn, s Scale, seed uint64) error {
	return LoadConcurrently(ctx, conn, nil, s, seed)
}

// LoadConcurrently is [Load] with every table copied on a connection of its
// own from connect (the tables are independent until indexes.sql joins them
// with foreign keys), at most workers at once; with a nil connect it copies on
// conn, one table at a time.
//
// Each table is emptied and copied in one transaction, with COPY FREEZE: rows
// loaded into a table truncated by their own transaction are written frozen
// and all-visible, so the VACUUM after the load has no tuple to freeze and
// the first reader no hint bits to set. The keys and indexes are built once,
// over loaded rows, on conn.
func LoadConcurrently(ctx context.Context, conn *pgx.Conn, connect func(context.Context) (*pgx.Conn, error), s Scale, seed uint64) error {
	if _, err := conn.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("create shop schema: %w", err)
	}
	if connect == nil {
		for _, t := range tables {
			if err := copyFrozen(ctx, conn, t, s, seed); err != nil {
				return err
			}
		}
	} else if err := copyConcurrently(ctx, connect, s, seed); err != nil {
		return err
	}
	if connect == nil {
		if _, err := conn.Exec(ctx, Indexes); err != nil {
			return fmt.Errorf("build shop keys and indexes: %w", err)
		}
	} else {
		// The primary and unique keys first, each table's at once; then the
		// foreign keys (which need them) and the other indexes, at once too.
		keys, rest := indexSteps(Indexes)
		for _, steps := range [][][]string{keys, rest} {
			if err := runConcurrently(ctx, connect, steps); err != nil {
				return fmt.Errorf("build shop keys and indexes: %w", err)
			}
		}
	}
	// A live table is vacuumed by autovacuum; a fresh load is not, and without
	// statistics the planner guesses. VACUUM cannot run inside the
	// multi-statement transaction of Indexes, so it runs alone, on the shop's
	// tables only.
	names := make([]string, 0, len(tables))
	for _, t := range tables {
		names = append(names, pgx.Identifier{t.name}.Sanitize())
	}
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(names, ", ")); err != nil {
		return fmt.Errorf("vacuum the shop: %w", err)
	}
	return nil
}

// copyConcurrently copies every table on a connection of its own, and
// returns the first error (the other copies stop with their context).
func copyConcurrently(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), s Scale, seed uint64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, t := range tables {
		wg.Go(func() {
			err := func() error {
				c, err := connect(ctx)
				if err != nil {
					return fmt.Errorf("connect to copy %s: %w", t.name, err)
				}
				defer c.Close(context.WithoutCancel(ctx))
				return copyFrozen(ctx, c, t, s, seed)
			}()
			if err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// indexSteps splits the statements of sql (indexes.sql) into the primary
// and unique keys, and the rest; a SELECT stays with the statement before it
// (setval after the identity it sets), in one step run in order.
func indexSteps(sql string) (keys, rest [][]string) {
	var lines []string
	for line := range strings.Lines(sql) {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		lines = append(lines, line)
	}
	for stmt := range strings.SplitSeq(strings.Join(lines, ""), ";") {
		stmt = strings.TrimSpace(stmt)
		switch {
		case stmt == "":
		case strings.HasPrefix(stmt, "SELECT") && len(rest) > 0:
			rest[len(rest)-1] = append(rest[len(rest)-1], stmt)
		case strings.Contains(stmt, "PRIMARY KEY") || strings.Contains(stmt, " UNIQUE "):
			keys = append(keys, []string{stmt})
		default:
			rest = append(rest, []string{stmt})
		}
	}
	return keys, rest
}

// maintenanceWorkers is how many keys and indexes are built at once.
const maintenanceWorkers = 3

// runConcurrently runs the steps, each on a connection of its own,
// maintenanceWorkers at once, and returns the first error. Two steps on one
// table wait for each other's lock; a foreign key locks its table, then the
// one it references, in the order of a tree, so no two wait on each other.
func runConcurrently(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), steps [][]string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan []string)
	var wg sync.WaitGroup
	for range min(maintenanceWorkers, len(steps)) {
		wg.Go(func() {
			c, err := connect(ctx)
			if err != nil {
				cancel(fmt.Errorf("connect to build indexes: %w", err))
				return
			}
			defer c.Close(context.WithoutCancel(ctx))
			// A sort that fits in memory builds a key without spilling to
			// disk; the setting is this session's alone.
			if _, err := c.Exec(ctx, "SET maintenance_work_mem = '256MB'"); err != nil {
				cancel(fmt.Errorf("set maintenance_work_mem to build indexes: %w", err))
			}
			for step := range next {
				for _, stmt := range step {
					if _, err := c.Exec(ctx, stmt); err != nil {
						cancel(fmt.Errorf("%s: %w", stmt, err))
					}
				}
			}
		})
	}
	for _, step := range steps {
		select {
		case next <- step:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// copyFrozen empties table t and copies its generated rows into it in one
// transaction, with COPY FREEZE.
func copyFrozen(ctx context.Context, conn *pgx.Conn, t table, s Scale, seed uint64) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("copy %s rows at scale %v seed %d: %w", t.name, s, seed, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "TRUNCATE "+pgx.Identifier{t.name}.Sanitize()); err != nil {
		return fmt.Errorf("truncate %s before its copy: %w", t.name, err)
	}
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN WITH (FREEZE)", pgx.Identifier{t.name}.Sanitize(), strings.Join(t.columns, ", "))
	if _, err := conn.PgConn().CopyFrom(ctx, &textRows{next: t.rows(s, seed)}, sql); err != nil {
		return fmt.Errorf("copy %s rows at scale %v seed %d: %w", t.name, s, seed, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the copy of %s: %w", t.name, err)
	}
	return nil
}

// textRows reads generated rows as COPY's text format: a line a row, tabs
// between columns, \N for NULL.
type textRows struct {
	next func() ([]any, error)
	buf  bytes.Buffer
	done bool
}

func (r *textRows) Read(p []byte) (int, error) {
	for !r.done && r.buf.Len() < len(p) {
		row, err := r.next()
		if err != nil {
			return 0, err
		}
		if row == nil {
			r.done = true
			break
		}
		if err := appendCopyText(&r.buf, row); err != nil {
			return 0, err
		}
	}
	if r.buf.Len() == 0 {
		return 0, io.EOF
	}
	return r.buf.Read(p)
}

// copyEscaper escapes what COPY's text format gives a meaning to.
var copyEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// appendCopyText appends row to buf as one line of COPY's text format.
func appendCopyText(buf *bytes.Buffer, row []any) error {
	var scratch [64]byte
	for i, v := range row {
		if i > 0 {
			buf.WriteByte('\t')
		}
		switch v := v.(type) {
		case nil:
			buf.WriteString(`\N`)
		case int64:
			buf.Write(strconv.AppendInt(scratch[:0], v, 10))
		case int32:
			buf.Write(strconv.AppendInt(scratch[:0], int64(v), 10))
		case string:
			copyEscaper.WriteString(buf, v)
		case time.Time:
			buf.Write(v.UTC().AppendFormat(scratch[:0], "2006-01-02 15:04:05.999999-07"))
		default:
			return fmt.Errorf("copy text of column %d: unexpected %T %v", i, v, v)
		}
	}
	buf.WriteByte('\n')
	return nil
}
