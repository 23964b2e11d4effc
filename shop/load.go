package shop

import (
	"context"
	_ "embed"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"works-vs-scales/internal/pgcopy"
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
	rows    func(Scale, uint64) func() ([]value, error)
}

// tables are the shop's tables, the largest first: the concurrent load
// starts their copies in this order.
var tables = []table{
	{"order_items", []string{"order_id", "line_no", "product_id", "quantity", "price_cents"}, orderItemRows},
	{"orders", []string{"id", "user_id", "status", "created_at"}, orderRows},
	{"comments", []string{"id", "post_id", "author_id", "body", "created_at"}, commentRows},
	{"users", []string{"id", "name", "email", "phone", "created_at"}, userRows},
	{"posts", []string{"id", "author_id", "title", "created_at"}, postRows},
	{"products", []string{"id", "name", "category", "price_cents", "stock"}, productRows},
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
// still copy; then to its foreign keys, each once the table it references is
// done too. No more tables are copied, keyed and vacuumed at once than this
// process has CPUs (each copy keeps a CPU busy with its generator and its
// server process), the largest first: the largest table's chain, its copy,
// key, VACUUM and foreign keys one after another, is the load's longest, and
// started first, with fewer copies beside it, it ends while the smaller
// tables still fill the CPUs, instead of alone after them (BenchmarkSeed in
// bench/partitioning). The server is taken to be on this machine, as the
// workshop's is. A foreign key is added NOT VALID, then checked with VALIDATE
// CONSTRAINT: adding a checked one locks the table it references against
// every other such addition, so the three that reference users would be
// checked one after another; a validation locks neither table against the
// others'. The database is the one Load builds: every key validated, under
// the same names.
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
	steps := indexSteps(Indexes)
	if err := copyConcurrently(ctx, connect, s, seed, steps); err != nil {
		return err
	}
	for _, stmt := range steps.rest {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("build shop keys and indexes: %s: %w", stmt, err)
		}
	}
	return nil
}

// copyConcurrently copies every table on a connection of its own, then runs
// on it the table's own statements, vacuums the table, and adds its foreign
// keys once the tables they reference are done; it returns the first error
// (the other copies stop with their context).
func copyConcurrently(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), s Scale, seed uint64, steps loadSteps) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(map[string]chan struct{}, len(tables))
	for _, t := range tables {
		done[t.name] = make(chan struct{})
	}
	// A copier takes a slot to copy, key and vacuum its table, and gives it
	// back before its foreign keys, which wait for other tables; the slots
	// are taken in the order of tables, each once the table before has its.
	slots := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	started := make([]chan struct{}, len(tables))
	for i := range started {
		started[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Go(func() {
			err := func() error {
				c, err := connect(ctx)
				if err != nil {
					return fmt.Errorf("connect to copy %s: %w", t.name, err)
				}
				defer c.Close(context.WithoutCancel(ctx))
				if i > 0 {
					select {
					case <-started[i-1]:
					case <-ctx.Done():
						return context.Cause(ctx)
					}
				}
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				close(started[i])
				holding := true
				defer func() {
					if holding {
						<-slots
					}
				}()
				if err := copyFrozen(ctx, c, t, s, seed); err != nil {
					return err
				}
				if err := setMaintenanceMemory(ctx, c); err != nil {
					return err
				}
				for _, stmt := range steps.own[t.name] {
					if _, err := c.Exec(ctx, stmt); err != nil {
						return fmt.Errorf("build the keys and indexes of %s: %s: %w", t.name, stmt, err)
					}
				}
				// A live table is vacuumed by autovacuum; a fresh load is
				// not, and without statistics the planner guesses.
				if _, err := c.Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{t.name}.Sanitize()); err != nil {
					return fmt.Errorf("vacuum %s: %w", t.name, err)
				}
				<-slots
				holding = false
				close(done[t.name])
				for _, fk := range steps.foreign[t.name] {
					select {
					case <-done[fk.references]:
					case <-ctx.Done():
						return context.Cause(ctx)
					}
					merge, err := leadsAnIndex(ctx, c, fk.table, fk.column)
					if err != nil {
						return err
					}
					// PostgreSQL checks a foreign key with an anti-join of
					// the two tables. When an index of the table leads with
					// the key's column (order_items' primary key leads with
					// order_id), a merge of that index and the referenced
					// primary key reads each key once, in order, index-only
					// since the VACUUM above; the hash join the planner
					// prefers first hashes every referenced key (at 1.2M
					// orders, 1.8-2.0 s against 3.3 s for order_items'
					// order_id, on a busy 2-CPU machine).
					hashJoin := "SET enable_hashjoin = on"
					if merge {
						hashJoin = "SET enable_hashjoin = off"
					}
					for _, stmt := range []string{hashJoin, fk.stmt + " NOT VALID", fk.validate()} {
						if _, err := c.Exec(ctx, stmt); err != nil {
							return fmt.Errorf("add a foreign key of %s: %s: %w", t.name, stmt, err)
						}
					}
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

// leadsAnIndex reports whether column is the first column of an index of
// table.
func leadsAnIndex(ctx context.Context, conn *pgx.Conn, table, column string) (bool, error) {
	const leads = `
		SELECT EXISTS (
			SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
			WHERE i.indrelid = $1::regclass AND a.attname = $2)`
	var ok bool
	if err := conn.QueryRow(ctx, leads, table, column).Scan(&ok); err != nil {
		return false, fmt.Errorf("look for an index of %s led by %s: %w", table, column, err)
	}
	return ok, nil
}

// loadSteps are the statements of indexes.sql, as the concurrent load runs
// them.
type loadSteps struct {
	// own holds, by copied table, the statements of that table alone: its
	// keys, indexes and identity.
	own map[string][]string
	// foreign holds, by copied table, its foreign keys to other copied tables.
	foreign map[string][]foreignKey
	// rest holds the statements of the tables that are not copied, in order.
	rest []string
}

// foreignKey is an ALTER TABLE ... ADD FOREIGN KEY (column) REFERENCES
// statement of indexes.sql.
type foreignKey struct {
	stmt       string
	table      string
	column     string
	references string
}

// validate checks the foreign key, named as PostgreSQL names an unnamed one.
func (fk foreignKey) validate() string {
	return fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", fk.table, fk.table+"_"+fk.column+"_fkey")
}

// indexSteps splits the statements of sql (indexes.sql) into the steps of
// the concurrent load. A SELECT stays with the statement before it (setval
// after the identity it sets).
func indexSteps(sql string) loadSteps {
	copied := make(map[string]bool, len(tables))
	for _, t := range tables {
		copied[t.name] = true
	}
	steps := loadSteps{own: make(map[string][]string), foreign: make(map[string][]foreignKey)}
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
		case fields[0] == "ALTER" && len(fields) > 2:
			table = fields[2] // ALTER TABLE name ...
		case fields[0] == "CREATE":
			if i := slices.Index(fields, "ON"); i >= 0 && i+1 < len(fields) {
				table = fields[i+1] // CREATE INDEX name ON table ...
			}
		}
		last = table
		if !copied[table] {
			steps.rest = append(steps.rest, stmt)
			last = ""
			continue
		}
		if _, after, ok := strings.Cut(stmt, "FOREIGN KEY"); ok {
			// FOREIGN KEY (column) REFERENCES table (id)
			f := strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(after))
			if len(f) < 3 || f[1] != "REFERENCES" || !copied[f[2]] {
				steps.rest = append(steps.rest, stmt)
				continue
			}
			steps.foreign[table] = append(steps.foreign[table], foreignKey{stmt: stmt, table: table, column: f[0], references: f[2]})
			continue
		}
		steps.own[table] = append(steps.own[table], stmt)
	}
	return steps
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
	if _, err := conn.PgConn().CopyFrom(ctx, pgcopy.NewRows(t.rows(s, seed)), sql); err != nil {
		return fmt.Errorf("copy %s rows at scale %v seed %d: %w", t.name, s, seed, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the copy of %s: %w", t.name, err)
	}
	return nil
}
