package shop

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
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
// with foreign keys); with a nil connect it copies on conn, one table at a
// time, then runs indexes.sql.
//
// Each table is emptied and copied in one transaction, with COPY FREEZE: rows
// loaded into a table truncated by their own transaction are written frozen
// and all-visible, so the VACUUM after the load has no tuple to freeze and
// the first reader no hint bits to set.
//
// Concurrently, each copier goes on, once its rows are in, to its table's
// own keys and indexes and its VACUUM (ANALYZE), while the other tables
// still copy. Then the foreign keys are added NOT VALID on conn, and checked
// at once with VALIDATE CONSTRAINT: adding a checked foreign key locks the
// table it references against every other such addition, so the three that
// reference users would be checked one after another; a validation locks
// neither table against the others'. The database is the one Load builds:
// every key validated, under the same names.
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
		if _, err := conn.Exec(ctx, Indexes); err != nil {
			return fmt.Errorf("build shop keys and indexes: %w", err)
		}
		// A live table is vacuumed by autovacuum; a fresh load is not, and
		// without statistics the planner guesses. VACUUM cannot run inside
		// the multi-statement transaction of Indexes, so it runs alone, on
		// the shop's tables only.
		names := make([]string, 0, len(tables))
		for _, t := range tables {
			names = append(names, pgx.Identifier{t.name}.Sanitize())
		}
		if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(names, ", ")); err != nil {
			return fmt.Errorf("vacuum the shop: %w", err)
		}
		return nil
	}
	own, rest := indexSteps(Indexes)
	if err := copyConcurrently(ctx, connect, s, seed, own); err != nil {
		return err
	}
	for _, stmt := range rest {
		if strings.Contains(stmt, "FOREIGN KEY") {
			stmt += " NOT VALID"
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("build shop keys and indexes: %s: %w", stmt, err)
		}
	}
	const unchecked = `
		SELECT format('ALTER TABLE %I VALIDATE CONSTRAINT %I', c.relname, conname)
		FROM pg_constraint JOIN pg_class c ON c.oid = conrelid
		WHERE contype = 'f' AND NOT convalidated AND c.relnamespace = current_schema()::regnamespace
		ORDER BY conname`
	rows, err := conn.Query(ctx, unchecked)
	if err != nil {
		return fmt.Errorf("list the foreign keys to validate: %w", err)
	}
	validations, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list the foreign keys to validate: %w", err)
	}
	if err := runConcurrently(ctx, connect, validations); err != nil {
		return fmt.Errorf("validate shop foreign keys: %w", err)
	}
	return nil
}

// copyConcurrently copies every table on a connection of its own, then runs
// on it the table's own statements from own and vacuums the table; it
// returns the first error (the other copies stop with their context).
func copyConcurrently(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), s Scale, seed uint64, own map[string][]string) error {
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
				if err := copyFrozen(ctx, c, t, s, seed); err != nil {
					return err
				}
				if err := setMaintenanceMemory(ctx, c); err != nil {
					return err
				}
				for _, stmt := range own[t.name] {
					if _, err := c.Exec(ctx, stmt); err != nil {
						return fmt.Errorf("build the keys and indexes of %s: %s: %w", t.name, stmt, err)
					}
				}
				// A live table is vacuumed by autovacuum; a fresh load is
				// not, and without statistics the planner guesses.
				if _, err := c.Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{t.name}.Sanitize()); err != nil {
					return fmt.Errorf("vacuum %s: %w", t.name, err)
				}
				return nil
			}()
			if err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// indexSteps splits the statements of sql (indexes.sql) into those of one
// copied table alone (its keys, indexes and identity), by table, and the
// rest, in order: the foreign keys, which join two tables, and the
// statements of tables that are not copied. A SELECT stays with the
// statement before it (setval after the identity it sets).
func indexSteps(sql string) (own map[string][]string, rest []string) {
	copied := make(map[string]bool, len(tables))
	for _, t := range tables {
		copied[t.name] = true
	}
	own = make(map[string][]string)
	var lines []string
	for line := range strings.Lines(sql) {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		lines = append(lines, line)
	}
	last := "" // the table of the statement before, "" for rest
	for stmt := range strings.SplitSeq(strings.Join(lines, ""), ";") {
		stmt = strings.TrimSpace(stmt)
		if stmt == "" {
			continue
		}
		table := ""
		fields := strings.Fields(stmt)
		switch {
		case fields[0] == "SELECT":
			table = last
		case strings.Contains(stmt, "FOREIGN KEY"):
		case fields[0] == "ALTER" && len(fields) > 2:
			table = fields[2] // ALTER TABLE name ...
		case fields[0] == "CREATE":
			if i := slices.Index(fields, "ON"); i >= 0 && i+1 < len(fields) {
				table = fields[i+1] // CREATE INDEX name ON table ...
			}
		}
		if !copied[table] {
			table = ""
		}
		if table == "" {
			rest = append(rest, stmt)
		} else {
			own[table] = append(own[table], stmt)
		}
		last = table
	}
	return own, rest
}

// maintenanceWorkers is how many foreign keys are validated at once.
const maintenanceWorkers = 3

// runConcurrently runs the statements, each on one of maintenanceWorkers
// connections of its own, and returns the first error. Two validations of
// one table wait for each other's lock; those of different tables do not,
// even when they reference the same table.
func runConcurrently(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), stmts []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(maintenanceWorkers, len(stmts)) {
		wg.Go(func() {
			c, err := connect(ctx)
			if err != nil {
				cancel(fmt.Errorf("connect to validate foreign keys: %w", err))
				return
			}
			defer c.Close(context.WithoutCancel(ctx))
			if err := setMaintenanceMemory(ctx, c); err != nil {
				cancel(err)
			}
			for stmt := range next {
				if _, err := c.Exec(ctx, stmt); err != nil {
					cancel(fmt.Errorf("%s: %w", stmt, err))
				}
			}
		})
	}
	for _, stmt := range stmts {
		select {
		case next <- stmt:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// setMaintenanceMemory lets conn's session sort in memory to build a key, and
// hash in memory to check a foreign key in one pass over each table; the
// settings are this session's alone.
func setMaintenanceMemory(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '256MB'; SET work_mem = '256MB'"); err != nil {
		return fmt.Errorf("set maintenance_work_mem and work_mem to build indexes: %w", err)
	}
	return nil
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
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN WITH (FORMAT binary, FREEZE)", pgx.Identifier{t.name}.Sanitize(), strings.Join(t.columns, ", "))
	if _, err := conn.PgConn().CopyFrom(ctx, &binaryRows{next: t.rows(s, seed)}, sql); err != nil {
		return fmt.Errorf("copy %s rows at scale %v seed %d: %w", t.name, s, seed, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the copy of %s: %w", t.name, err)
	}
	return nil
}

// binaryRows reads generated rows as COPY's binary format: a header, then
// per row its number of columns and each column's length and bytes (-1 for
// NULL), then a trailer. The server stores binary values as they come, where
// text would have it parse every number and timestamp.
type binaryRows struct {
	next    func() ([]any, error)
	buf     bytes.Buffer
	started bool
	done    bool
}

// copyBinaryHeader opens COPY's binary format: its signature, no flags and
// no header extension.
const copyBinaryHeader = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

func (r *binaryRows) Read(p []byte) (int, error) {
	if !r.started {
		r.started = true
		r.buf.WriteString(copyBinaryHeader)
	}
	for !r.done && r.buf.Len() < len(p) {
		row, err := r.next()
		if err != nil {
			return 0, err
		}
		if row == nil {
			r.done = true
			r.buf.Write([]byte{0xff, 0xff}) // the trailer: -1 columns
			break
		}
		if err := appendCopyBinary(&r.buf, row); err != nil {
			return 0, err
		}
	}
	if r.buf.Len() == 0 {
		return 0, io.EOF
	}
	return r.buf.Read(p)
}

// postgresEpoch is where PostgreSQL counts a timestamp's microseconds from,
// in microseconds since Unix's.
var postgresEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// appendCopyBinary appends row to buf as one row of COPY's binary format:
// int64 as bigint, int32 as integer, string as text, time.Time as
// timestamptz, nil as NULL.
func appendCopyBinary(buf *bytes.Buffer, row []any) error {
	var scratch [12]byte
	buf.Write(binary.BigEndian.AppendUint16(scratch[:0], uint16(len(row))))
	for i, v := range row {
		b := scratch[:0]
		switch v := v.(type) {
		case nil:
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // length -1
		case int64:
			b = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(b, 8), uint64(v))
		case int32:
			b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(b, 4), uint32(v))
		case string:
			buf.Write(binary.BigEndian.AppendUint32(b, uint32(len(v))))
			buf.WriteString(v)
			continue
		case time.Time:
			b = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(b, 8), uint64(v.UnixMicro()-postgresEpoch))
		default:
			return fmt.Errorf("copy binary of column %d: unexpected %T %v", i, v, v)
		}
		buf.Write(b)
	}
	return nil
}
