package partitioning

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"works-vs-scales/internal/pgcopy"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// fillOrders fills h's orders, two items each, into whatever history.orders
// and history.order_items are (a side's tables or an answer's), with
// autovacuum off on every table in the schema history, partitions included,
// so that the dead tuples a test counts are those the code left.
//
// It loads as pgbench -i does: the rows are copied (COPY, binary, FREEZE:
// copyTable) into tables without their keys, indexes and foreign keys, which
// are then built, and checked, once each, as they were defined (a key in
// place would be updated row by row, and a foreign key in place would look
// up each item's order: 20M lookups for a decade of 10M orders). The orders
// and the items are copied at once on two connections, each table in the
// order of its rows' times, so that its pages follow time as a live table's
// do (BRIN depends on it), and each connection builds its table's keys and
// indexes once its rows are in. Then, unless then is "", the two tables are
// vacuumed or analyzed at once (then is "VACUUM (ANALYZE)" or "ANALYZE"),
// and the foreign keys are checked last, on tables whose statistics and
// visibility map are known (the check's join is planned on them, and is
// slower without). Both sides get the same fill, and their indexes are built
// compact, as a freshly built index is.
func fillOrders(ctx context.Context, db *pgxpool.Pool, h history, then string) error {
	if err := autovacuumOff(ctx, db); err != nil {
		return err
	}
	defs, err := historyShape(ctx, db)
	if err != nil {
		return err
	}
	for _, drop := range defs.drops() {
		if _, err := db.Exec(ctx, drop); err != nil {
			return fmt.Errorf("drop for the fill: %s: %w", drop, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range []historyTable{h.orderTable(), h.itemTable()} {
		g.Go(func() error {
			if err := copyTable(gctx, db, t); err != nil {
				return err
			}
			return defs.build(gctx, db, t.name)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := defs.build(ctx, db, ""); err != nil { // an answer's other tables, if any
		return err
	}
	if then != "" {
		g, gctx := errgroup.WithContext(ctx)
		for _, table := range []string{"history.orders", "history.order_items"} {
			g.Go(func() error {
				if _, err := db.Exec(gctx, then+" "+table); err != nil {
					return fmt.Errorf("%s %s after the fill: %w", then, table, err)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	for _, fk := range defs.foreignKeys {
		if err := withMaintenanceMemory(ctx, db, fk.Add); err != nil {
			return fmt.Errorf("add a foreign key again after the fill: %s: %w", fk.Add, err)
		}
	}
	return nil
}

// historyTable is a table of the history and the rows the fill copies into
// it, in the order of their times.
type historyTable struct {
	name    string   // history.orders or history.order_items
	columns []string // the columns copied, in the rows' order
	types   []string // their types, as format_type names them: the binary copy writes these
	at      int      // the column of the row's time, by which the sides partition
	rows    func() func() ([]pgcopy.Value, error)
	what    string // the rows, for errors
}

// orderTable is h's orders: order g placed at first + (g-1)·step, for user
// 1 + (g·7919) mod users.
func (h history) orderTable() historyTable {
	step := h.step().Truncate(time.Microsecond)
	return historyTable{
		name:    "history.orders",
		columns: []string{"id", "user_id", "total_cents", "created_at"},
		types:   []string{"bigint", "bigint", "bigint", "timestamp with time zone"},
		at:      3,
		rows: func() func() ([]pgcopy.Value, error) {
			g := int64(0)
			row := make([]pgcopy.Value, 4)
			return func() ([]pgcopy.Value, error) {
				if g++; g > int64(h.orders) {
					return nil, nil
				}
				row[0], row[1], row[2] = pgcopy.Bigint(g), pgcopy.Bigint(1+(g*7919)%int64(h.users)), pgcopy.Bigint(orderTotal(g))
				row[3] = pgcopy.Timestamptz(h.first.Add(time.Duration(g-1) * step))
				return row, nil
			}
		},
		what: fmt.Sprintf("%d orders from %v", h.orders, h.first),
	}
}

// itemTable is the items of h's orders, two an order, in their orders'
// order: line l of order g is product 1 + (31g + l) mod 1000 at half the
// order's total, at the order's time.
func (h history) itemTable() historyTable {
	step := h.step().Truncate(time.Microsecond)
	return historyTable{
		name:    "history.order_items",
		columns: []string{"order_id", "created_at", "line_no", "product_id", "price_cents"},
		types:   []string{"bigint", "timestamp with time zone", "integer", "bigint", "bigint"},
		at:      1,
		rows: func() func() ([]pgcopy.Value, error) {
			i := int64(0)
			row := make([]pgcopy.Value, 5)
			return func() ([]pgcopy.Value, error) {
				if i++; i > 2*int64(h.orders) {
					return nil, nil
				}
				g, l := (i+1)/2, 2-i%2
				row[0], row[1] = pgcopy.Bigint(g), pgcopy.Timestamptz(h.first.Add(time.Duration(g-1)*step))
				row[2], row[3], row[4] = pgcopy.Integer(int32(l)), pgcopy.Bigint(1+(g*31+l)%1000), pgcopy.Bigint(orderTotal(g)/2)
				return row, nil
			}
		},
		what: fmt.Sprintf("the items of %d orders from %v", h.orders, h.first),
	}
}

// copyTable copies t's rows into its table. Where the table is one table of
// t's column types, or is partitioned by range of the rows' time into tables
// of their own, it copies as pgbench -i does: in one transaction that empties
// the table first, into each partition in turn (in the order of time), in
// COPY's binary format, with FREEZE: the rows are written frozen and visible
// to all, so that the VACUUM after the fill has no page to write again. Any
// other shape (an answer's partitions by user, a default partition, other
// column types) gets one plain COPY into the table, which PostgreSQL routes.
func copyTable(ctx context.Context, db *pgxpool.Pool, t historyTable) error {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("copy %s: %w", t.what, err)
	}
	defer conn.Release()
	parts, frozen, err := timeParts(ctx, conn.Conn(), t)
	if err != nil {
		return fmt.Errorf("copy %s: %w", t.what, err)
	}
	if !frozen {
		next := t.rows()
		anys := make([]any, len(t.columns))
		_, err := conn.CopyFrom(ctx, pgx.Identifier(strings.Split(t.name, ".")), t.columns, pgx.CopyFromFunc(func() ([]any, error) {
			row, err := next()
			if row == nil {
				return nil, err
			}
			for i, v := range row {
				anys[i] = v.Any()
			}
			return anys, nil
		}))
		if err != nil {
			return fmt.Errorf("copy %s into %s: %w", t.what, t.name, err)
		}
		return nil
	}
	rows := &timedRows{next: t.rows(), at: t.at}
	err = pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "TRUNCATE "+t.name); err != nil {
			return fmt.Errorf("empty %s to copy into it frozen: %w", t.name, err)
		}
		for _, p := range parts {
			sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary, FREEZE)", p.name, strings.Join(t.columns, ", "))
			if _, err := tx.Conn().PgConn().CopyFrom(ctx, pgcopy.NewRows(rows.within(p)), sql); err != nil {
				return fmt.Errorf("into %s: %w", p.name, err)
			}
		}
		row, err := rows.peek()
		if err != nil {
			return err
		}
		if row != nil {
			return fmt.Errorf("a row at %v is after the last partition of %s", row[t.at].Time(), t.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy %s: %w", t.what, err)
	}
	return nil
}

// A timePart is a table the fill copies into, holding the rows of times in
// [from, to): a partition by range of time, or a whole table (both zero).
type timePart struct {
	name     string
	from, to time.Time
}

// timeParts returns where t's rows go when the table is one table of t's
// column types, or partitioned by range of created_at into tables; frozen
// false for any other shape.
func timeParts(ctx context.Context, conn *pgx.Conn, t historyTable) (parts []timePart, frozen bool, err error) {
	const typesQuery = `
		SELECT coalesce(format_type(a.atttypid, a.atttypmod), '')
		FROM unnest($2::text[]) WITH ORDINALITY c (name, i)
		LEFT JOIN pg_attribute a ON a.attrelid = $1::regclass AND a.attname = c.name AND NOT a.attisdropped
		ORDER BY c.i`
	rows, _ := conn.Query(ctx, typesQuery, t.name, t.columns)
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, fmt.Errorf("the column types of %s: %w", t.name, err)
	}
	if !slices.Equal(types, t.types) {
		return nil, false, nil
	}
	var key *string
	if err := conn.QueryRow(ctx, "SELECT pg_get_partkeydef($1::regclass)", t.name).Scan(&key); err != nil {
		return nil, false, fmt.Errorf("the partition key of %s: %w", t.name, err)
	}
	if key == nil {
		return []timePart{{name: t.name}}, true, nil
	}
	if *key != "RANGE ("+t.columns[t.at]+")" {
		return nil, false, nil
	}
	// The server reads its own bounds back (a bound is printed in the
	// session's time zone); a default partition, MINVALUE or MAXVALUE, or a
	// partition partitioned again reads as NULL.
	const partsQuery = `
		SELECT c.oid::regclass::text, CASE WHEN c.relkind = 'r' THEN b[1]::timestamptz END, CASE WHEN c.relkind = 'r' THEN b[2]::timestamptz END
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \(''([^'']*)''\) TO \(''([^'']*)''\)$') b ON true
		WHERE i.inhparent = $1::regclass
		ORDER BY 2`
	rows, _ = conn.Query(ctx, partsQuery, t.name)
	var name string
	var from, to *time.Time
	ranges := true
	_, err = pgx.ForEachRow(rows, []any{&name, &from, &to}, func() error {
		if from == nil || to == nil {
			ranges = false
			return nil
		}
		parts = append(parts, timePart{name: name, from: *from, to: *to})
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("the partitions of %s: %w", t.name, err)
	}
	if !ranges || len(parts) == 0 {
		return nil, false, nil
	}
	return parts, true, nil
}

// timedRows are rows in the order of their times (column at), handed out a
// partition at a time.
type timedRows struct {
	next func() ([]pgcopy.Value, error)
	at   int
	row  []pgcopy.Value // read from next and not handed out yet, if read
	read bool
	err  error
}

// peek returns the next row without handing it out; nil after the last.
func (r *timedRows) peek() ([]pgcopy.Value, error) {
	if !r.read {
		r.row, r.err = r.next()
		r.read = true
	}
	return r.row, r.err
}

// within returns the rows that belong in p, those up to p.to, and fails on
// a row before p.from: it belongs in no partition.
func (r *timedRows) within(p timePart) func() ([]pgcopy.Value, error) {
	return func() ([]pgcopy.Value, error) {
		row, err := r.peek()
		if row == nil || err != nil {
			return nil, err
		}
		at := row[r.at].Time()
		if at.Before(p.from) {
			return nil, fmt.Errorf("a row at %v is in no partition (the next, %s, starts at %v)", at, p.name, p.from)
		}
		if !p.to.IsZero() && !at.Before(p.to) {
			return nil, nil
		}
		r.read = false
		return row, nil
	}
}

// withMaintenanceMemory runs sql in a transaction whose sorts and hashes
// may take 256 MB (maintenance_work_mem and work_mem, for this transaction
// only): an index is then built, and a foreign key checked, in memory.
func withMaintenanceMemory(ctx context.Context, db *pgxpool.Pool, sql string) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL work_mem = '256MB'"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sql)
		return err
	})
}

// orderTotal is order g's total in cents.
func orderTotal(g int64) int64 { return 100 + (g*104729)%100000 }

// autovacuumOff turns autovacuum off on every table of the schema history.
func autovacuumOff(ctx context.Context, db *pgxpool.Pool) error {
	const tablesQuery = `
		SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'history' AND c.relkind = 'r'`
	rows, err := db.Query(ctx, tablesQuery)
	if err != nil {
		return fmt.Errorf("the tables of history: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("the tables of history: %w", err)
	}
	for _, table := range tables {
		if _, err := db.Exec(ctx, "ALTER TABLE "+table+" SET (autovacuum_enabled = off)"); err != nil {
			return fmt.Errorf("autovacuum off on %s: %w", table, err)
		}
	}
	return nil
}

// ddl is how to drop one key, index or foreign key, and how to make it again
// as it was defined.
type ddl struct{ Table, Drop, Add string }

// shape is what the fill drops and makes again in the schema history: the
// definitions of tables and partitioned tables, not their copies on the
// partitions (conparentid, pg_inherits), which go and come back with them.
type shape struct {
	foreignKeys []ddl
	keys        []ddl // primary keys and unique constraints
	indexes     []ddl // the other indexes
}

// historyShape reads the shape of the schema history.
func historyShape(ctx context.Context, db *pgxpool.Pool) (shape, error) {
	const constraintsQuery = `
		SELECT conrelid::regclass::text, format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
		       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
		FROM pg_constraint
		WHERE contype = $1 AND connamespace = 'history'::regnamespace AND conparentid = 0
		ORDER BY conname`
	const indexesQuery = `
		SELECT i.indrelid::regclass::text, format('DROP INDEX %s', i.indexrelid::regclass),
		       replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relnamespace = 'history'::regnamespace
		  AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = i.indexrelid)
		  AND NOT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = i.indexrelid)
		ORDER BY c.relname`
	collect := func(query string, args ...any) ([]ddl, error) {
		rows, err := db.Query(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("the shape of history: %w", err)
		}
		defs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ddl])
		if err != nil {
			return nil, fmt.Errorf("the shape of history: %w", err)
		}
		return defs, nil
	}
	var s shape
	var err error
	if s.foreignKeys, err = collect(constraintsQuery, "f"); err != nil {
		return shape{}, err
	}
	primary, err := collect(constraintsQuery, "p")
	if err != nil {
		return shape{}, err
	}
	unique, err := collect(constraintsQuery, "u")
	if err != nil {
		return shape{}, err
	}
	s.keys = append(primary, unique...)
	if s.indexes, err = collect(indexesQuery); err != nil {
		return shape{}, err
	}
	return s, nil
}

// drops are the statements that drop the shape, foreign keys first (they
// depend on the keys they reference).
func (s shape) drops() []string {
	var drops []string
	for _, d := range slices.Concat(s.foreignKeys, s.indexes, s.keys) {
		drops = append(drops, d.Drop)
	}
	return drops
}

// build makes the keys and indexes of table again, one after another (each
// in memory: withMaintenanceMemory); with table "", those of every table
// other than orders and order_items.
func (s shape) build(ctx context.Context, db *pgxpool.Pool, table string) error {
	for _, d := range slices.Concat(s.keys, s.indexes) {
		mine := d.Table == table
		if table == "" {
			mine = d.Table != "history.orders" && d.Table != "history.order_items"
		}
		if !mine {
			continue
		}
		if err := withMaintenanceMemory(ctx, db, d.Add); err != nil {
			return fmt.Errorf("build again after the fill: %s: %w", d.Add, err)
		}
	}
	return nil
}

// TestFillCopiesFrozenWhereTheShapeAllows: both sides' tables are copied
// frozen, the naive side's as one table and the scalable side's a month at a
// time; a table partitioned by user (an answer's) gets the plain copy.
func TestFillCopiesFrozenWhereTheShapeAllows(t *testing.T) {
	ctx := context.Background()
	h := history{first: testHistory.first, months: 3, orders: 30, users: 3}
	cases := []struct {
		name         string
		createTables func(context.Context, *pgxpool.Pool) error
		prepare      func(context.Context, *pgxpool.Pool, time.Time, time.Time) error
		parts        int // of orders; 0: the plain copy
	}{
		{"naive", impls()[0].createTables, impls()[0].prepareMonths, 1},
		{"scalable", impls()[1].createTables, impls()[1].prepareMonths, 3},
		{"by user", createTablesByUser, noMonths, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			require.NoError(t, c.createTables(ctx, db))
			require.NoError(t, c.prepare(ctx, db, h.first, h.end()))
			conn, err := db.Acquire(ctx)
			require.NoError(t, err)
			parts, frozen, err := timeParts(ctx, conn.Conn(), h.orderTable())
			conn.Release()
			require.NoError(t, err)
			assert.Equal(t, c.parts > 0, frozen)
			assert.Len(t, parts, c.parts)
			require.NoError(t, fillOrders(ctx, db, h, ""))
			var orders, items int
			require.NoError(t, db.QueryRow(ctx, "SELECT (SELECT count(*) FROM history.orders), (SELECT count(*) FROM history.order_items)").Scan(&orders, &items))
			assert.Equal(t, h.orders, orders)
			assert.Equal(t, 2*h.orders, items)
			// A second fill empties the tables first (or, on the plain
			// copy, is refused by the keys it makes again): no row twice.
			err = fillOrders(ctx, db, h, "")
			if !frozen {
				require.Error(t, err, "the plain copy twice: every order twice, and keys that cannot be made")
				return
			}
			require.NoError(t, err)
			require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM history.orders").Scan(&orders))
			assert.Equal(t, h.orders, orders)
		})
	}
}

// TestFillRefusesARowWithNoPartition: an order in a month with no partition
// fails the fill, naming its time, as it would fail an INSERT.
func TestFillRefusesARowWithNoPartition(t *testing.T) {
	ctx := context.Background()
	h := history{first: testHistory.first, months: 3, orders: 30, users: 3}
	db := pgtest.ShopClone(t, shop.Small)
	im := impls()[1]
	require.NoError(t, im.createTables(ctx, db))
	require.NoError(t, im.prepareMonths(ctx, db, h.first.AddDate(0, 1, 0), h.end())) // no first month
	err := fillOrders(ctx, db, h, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is in no partition")
	assert.Contains(t, err.Error(), h.first.String())
}
