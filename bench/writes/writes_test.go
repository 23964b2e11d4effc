package writes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/writes"
	scalable "works-vs-scales/scalable/writes"
	"works-vs-scales/shop"
)

// Lesson 14: the write path. Every importer writes into a copy of its own of
// a small shop (110 users, 100 products), orders with ids from importedIDs
// up, which the generated shop never uses.

// writesScale is the shop the importers write into: small, so that a copy of
// it is quick to make; what is measured is the rows written, not the rows
// there.
var writesScale = shop.Scale{TopOrders: 100}

const importedIDs = 10_000_000

type importFunc func(ctx context.Context, db *pgxpool.Pool, orders []shop.Order) error

// importer is a way to import orders, and what it costs, for n orders with m
// items: statements, round trips and commits.
type importer struct {
	name                       string
	importOrders               importFunc
	statements, trips, commits func(n, m int64) int64
	allOrNothing               bool
}

func importers() []importer {
	four := func(n, m int64) int64 { return 4 } // BEGIN, a statement a table, COMMIT
	one := func(n, m int64) int64 { return 1 }
	return []importer{
		{"naive", naive.ImportOrders, func(n, m int64) int64 { return n + m }, func(n, m int64) int64 { return n + m }, func(n, m int64) int64 { return n + m }, false},
		{"onetx", scalable.ImportOrdersInOneTransaction, func(n, m int64) int64 { return n + m + 2 }, func(n, m int64) int64 { return n + m + 2 }, one, true},
		{"multirow", scalable.ImportOrdersMultiRow, multiRowStatements, multiRowStatements, one, true},
		{"unnest", scalable.ImportOrdersUnnest, four, four, one, true},
		{"batch", scalable.ImportOrdersBatch, func(n, m int64) int64 { return n + m }, one, one, true},
		{"copy", scalable.ImportOrders, four, four, one, true},
		{"upsert", scalable.UpsertOrders, four, four, one, true},
	}
}

// multiRowStatements is BEGIN, COMMIT, and a statement per chunk of rows of at
// most 65,535 parameters: 4 a order, 5 an item.
func multiRowStatements(n, m int64) int64 {
	chunks := func(rows, columns int64) int64 {
		per := int64(scalable.MaxParameters) / columns
		return (rows + per - 1) / per
	}
	return 2 + chunks(n, 4) + chunks(m, 5)
}

// importedOrders returns n orders to import, with ids from firstID up: one or
// two items each, users and products of writesScale, deterministic.
func importedOrders(n int, firstID int64) []shop.Order {
	placed := time.Date(2026, time.March, 1, 9, 0, 0, 0, time.UTC)
	statuses := []string{"pending", "shipped", "delivered", "cancelled"}
	orders := make([]shop.Order, n)
	for i := range orders {
		o := shop.Order{
			ID:        firstID + int64(i),
			UserID:    int64(1 + i*7%writesScale.Users()),
			Status:    statuses[i%len(statuses)],
			CreatedAt: placed.Add(time.Duration(i) * time.Second),
		}
		for line := range 1 + i%2 {
			o.Items = append(o.Items, shop.OrderItem{
				LineNo:     int32(line + 1),
				Product:    shop.Product{ID: int64(1 + (i*13+line)%writesScale.Products())},
				Quantity:   int32(1 + i%3),
				PriceCents: int64(100 + i%5000),
			})
		}
		orders[i] = o
	}
	return orders
}

func itemsOf(orders []shop.Order) int64 {
	var m int64
	for _, o := range orders {
		m += int64(len(o.Items))
	}
	return m
}

// importedRows returns the orders with ids from first to last, with their
// items, as the database holds them.
func importedRows(t *testing.T, db *pgxpool.Pool, first, last int64) []shop.Order {
	t.Helper()
	ctx := context.Background()
	const readOrders = `SELECT id, user_id, status, created_at FROM orders WHERE id BETWEEN $1 AND $2 ORDER BY id`
	rows, err := db.Query(ctx, readOrders, first, last)
	require.NoError(t, err)
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Order, error) {
		var o shop.Order
		err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt)
		o.CreatedAt = o.CreatedAt.UTC()
		return o, err
	})
	require.NoError(t, err)
	byID := make(map[int64]*shop.Order, len(orders))
	for i := range orders {
		byID[orders[i].ID] = &orders[i]
	}
	const readItems = `SELECT order_id, line_no, product_id, quantity, price_cents FROM order_items
		WHERE order_id BETWEEN $1 AND $2 ORDER BY order_id, line_no`
	rows, err = db.Query(ctx, readItems, first, last)
	require.NoError(t, err)
	var orderID int64
	var item shop.OrderItem
	_, err = pgx.ForEachRow(rows, []any{&orderID, &item.LineNo, &item.Product.ID, &item.Quantity, &item.PriceCents}, func() error {
		o, ok := byID[orderID]
		if !ok {
			return fmt.Errorf("item of order %d, which is not there", orderID)
		}
		o.Items = append(o.Items, item)
		return nil
	})
	require.NoError(t, err)
	return orders
}

func TestImportOrdersAgree(t *testing.T) {
	const n = 100
	orders := importedOrders(n, importedIDs)
	m := itemsOf(orders)
	for _, imp := range importers() {
		t.Run(benchkit.Name("impl", imp.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, writesScale)
			ctx, counts := pgtest.CountQueries(context.Background())
			require.NoError(t, imp.importOrders(ctx, db, orders))
			require.Equal(t, orders, importedRows(t, db, importedIDs, importedIDs+n-1))
			require.Equal(t, imp.statements(n, m), counts.Statements(), "statements")
			require.Equal(t, imp.trips(n, m), counts.RoundTrips(), "round trips")
			require.Equal(t, imp.commits(n, m), counts.Commits(), "commits")
			require.Equal(t, n+m, counts.Rows(), "rows written")
		})
	}
}

// TestImportOrdersWithABadRow imports 10,000 orders of which one names a
// user the shop does not have: every version reports that row; naive has
// written the rows before it, the others nothing; and, the row fixed, the
// import runs again: naive's second run fails on the rows its first wrote.
func TestImportOrdersWithABadRow(t *testing.T) {
	const n, badRow = 10_000, 765 // naive writes the rows before it one by one: seconds
	for _, imp := range importers() {
		t.Run(benchkit.Name("impl", imp.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, writesScale)
			ctx := context.Background()
			orders := importedOrders(n, importedIDs)
			orders[badRow-1].UserID = 999_999
			err := imp.importOrders(ctx, db, orders)
			var rowErr *shop.RowError
			require.ErrorAs(t, err, &rowErr)
			require.ErrorIs(t, err, shop.ErrInvalidRow)
			require.Len(t, rowErr.Rows, 1, "%v", err)
			require.Equal(t, badRow, rowErr.Rows[0].Row, "%v", err)
			require.Contains(t, rowErr.Rows[0].Reason, "999999")

			landed := len(importedRows(t, db, importedIDs, importedIDs+n-1))
			orders[badRow-1].UserID = 1
			err = imp.importOrders(ctx, db, orders)
			if !imp.allOrNothing {
				require.Equal(t, badRow-1, landed, "naive writes the rows before the bad one")
				require.ErrorIs(t, err, shop.ErrInvalidRow, "and its second run fails on them")
				require.ErrorContains(t, err, "row 1:")
				return
			}
			require.Zero(t, landed, "nothing written")
			require.NoError(t, err)
			require.Equal(t, orders, importedRows(t, db, importedIDs, importedIDs+n-1))
		})
	}
}

func TestImportOrdersRefusesHostileInput(t *testing.T) {
	placed := time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)
	good := func(id int64) shop.Order {
		return shop.Order{ID: id, UserID: 1, Status: "pending", CreatedAt: placed,
			Items: []shop.OrderItem{{LineNo: 1, Product: shop.Product{ID: 1}, Quantity: 1, PriceCents: 100}}}
	}
	cases := map[string]func(o *shop.Order){
		"id zero":         func(o *shop.Order) { o.ID = 0 },
		"negative user":   func(o *shop.Order) { o.UserID = -1 },
		"unknown user":    func(o *shop.Order) { o.UserID = 1 << 62 },
		"unknown status":  func(o *shop.Order) { o.Status = "paid'; DROP TABLE orders; --" },
		"no time":         func(o *shop.Order) { o.CreatedAt = time.Time{} },
		"year 600,000":    func(o *shop.Order) { o.CreatedAt = time.Date(600_000, 1, 1, 0, 0, 0, 0, time.UTC) }, // beyond what pgx encodes: it wraps to year 15,445
		"line zero":       func(o *shop.Order) { o.Items[0].LineNo = 0 },
		"line twice":      func(o *shop.Order) { o.Items = append(o.Items, o.Items[0]) },
		"unknown product": func(o *shop.Order) { o.Items[0].Product.ID = 1 << 62 },
		"zero quantity":   func(o *shop.Order) { o.Items[0].Quantity = 0 },
		"negative price":  func(o *shop.Order) { o.Items[0].PriceCents = -1 },
		"id the shop has": func(o *shop.Order) { o.ID = 1 },
		"id given twice":  func(o *shop.Order) { o.ID-- }, // the first order's id
	}
	for _, imp := range importers() {
		t.Run(benchkit.Name("impl", imp.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, writesScale)
			ctx, counts := pgtest.CountQueries(context.Background())
			require.NoError(t, imp.importOrders(ctx, db, nil))
			require.NoError(t, imp.importOrders(ctx, db, []shop.Order{}))
			require.Zero(t, counts.RoundTrips(), "nothing to import, nothing asked")
			next := int64(importedIDs)
			for what, spoil := range cases {
				next += 2
				orders := []shop.Order{good(next), good(next + 1)}
				spoil(&orders[1])
				err := imp.importOrders(ctx, db, orders)
				if what == "id the shop has" && imp.name == "upsert" {
					require.NoError(t, err, "an upsert updates the orders it has")
					continue
				}
				var rowErr *shop.RowError
				require.ErrorAs(t, err, &rowErr, what)
				require.Equal(t, 2, rowErr.Rows[0].Row, "%s: %v", what, err)
				landed := len(importedRows(t, db, next, next+1))
				if imp.allOrNothing {
					require.Zero(t, landed, "%s: nothing written", what)
				} else if what == "unknown product" {
					require.Equal(t, 2, landed, "%s: naive wrote the row before, and the bad order without its item", what)
				} else {
					require.Equal(t, 1, landed, "%s: naive wrote the row before", what)
				}
			}
		})
	}
}

// TestImportOrdersMultiRowChunksAtTheParameterLimit imports 20,000 orders,
// 80,000 parameters, with multi-row INSERTs: more than one statement may
// take, which is what a single INSERT of them would fail with.
func TestImportOrdersMultiRowChunksAtTheParameterLimit(t *testing.T) {
	const n = 20_000
	orders := importedOrders(n, importedIDs)
	m := itemsOf(orders)
	db := pgtest.ShopClone(t, writesScale)
	ctx, counts := pgtest.CountQueries(context.Background())
	require.NoError(t, scalable.ImportOrdersMultiRow(ctx, db, orders))
	require.Equal(t, int64(2+2+3), counts.Statements(), "BEGIN, 2 chunks of orders, 3 of items, COMMIT")
	require.Equal(t, multiRowStatements(n, m), counts.Statements())
	var landed int64
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM orders WHERE id >= $1", importedIDs).Scan(&landed))
	require.Equal(t, int64(n), landed)

	// One statement of 16,384 orders is 65,536 parameters: one too many.
	sql := "INSERT INTO orders (id, user_id, status, created_at) VALUES "
	var args []any
	for i, o := range importedOrders(scalable.MaxParameters/4+1, 2*importedIDs) {
		if i > 0 {
			sql += ", "
		}
		p := len(args)
		sql += fmt.Sprintf("($%d, $%d, $%d, $%d)", p+1, p+2, p+3, p+4)
		args = append(args, o.ID, o.UserID, o.Status, o.CreatedAt)
	}
	_, err := db.Exec(ctx, sql, args...)
	require.ErrorContains(t, err, "65535")

	var chunks [][]int
	for chunk := range scalable.Chunks([]int{1, 2, 3, 4, 5}, 2) {
		chunks = append(chunks, chunk)
	}
	require.Equal(t, [][]int{{1, 2}, {3, 4}, {5}}, chunks)
	chunks = nil
	for chunk := range scalable.Chunks([]int{1, 2}, 0) { // a size below 1 is 1, not a loop forever
		chunks = append(chunks, chunk)
		require.LessOrEqual(t, len(chunks), 2, "a size of 0 yields the same empty chunk forever")
	}
	require.Equal(t, [][]int{{1}, {2}}, chunks)
	for chunk := range scalable.Chunks([]int(nil), 3) {
		t.Errorf("no rows, no chunks: got %v", chunk)
	}
}

func TestUpsertOrdersIsSafeToRunTwice(t *testing.T) {
	const n = 1_000
	orders := importedOrders(n, importedIDs)
	db := pgtest.ShopClone(t, writesScale)
	ctx := context.Background()
	require.NoError(t, scalable.UpsertOrders(ctx, db, orders[:n/2]), "a sync that stopped half way")
	require.NoError(t, scalable.UpsertOrders(ctx, db, orders), "runs again, whole")
	require.NoError(t, scalable.UpsertOrders(ctx, db, orders), "and again")
	require.Equal(t, orders, importedRows(t, db, importedIDs, importedIDs+n-1))
	orders[7].Status = "cancelled"
	orders[7].Items[0].Quantity = 9
	require.NoError(t, scalable.UpsertOrders(ctx, db, orders), "a change")
	require.Equal(t, orders, importedRows(t, db, importedIDs, importedIDs+n-1))
}

// BenchmarkImportOrders imports n orders, with one or two items each, into a
// copy of the shop of its own, with every version: rows/s counts orders and
// items; wal-bytes/op is the server's WAL written meanwhile, by this import
// and anything else running on the server.
func BenchmarkImportOrders(b *testing.B) {
	top := 10_000
	if benchkit.Large() {
		top = 100_000
	}
	for _, imp := range importers() {
		for _, n := range benchkit.Ladder(100, top) {
			b.Run(benchkit.Name("impl", imp.name)+"/"+benchkit.Name("orders", n), func(b *testing.B) {
				db := pgtest.ShopClone(b, writesScale)
				orders := importedOrders(n, importedIDs)
				rows := int64(n) + itemsOf(orders)
				// A first import of one order prepares the statements on the
				// pool's connection, as a running service has.
				if err := imp.importOrders(context.Background(), db, importedOrders(1, importedIDs/2)); err != nil {
					b.Fatal(err)
				}
				ctx, counts := pgtest.CountQueries(context.Background())
				startLSN := walLSN(b, db)
				for b.Loop() {
					if err := imp.importOrders(ctx, db, orders); err != nil {
						b.Fatal(err)
					}
					for i := range orders { // the next import's ids
						orders[i].ID += int64(n)
					}
				}
				wal := walLSN(b, db) - startLSN
				benchkit.ReportCounts(b, counts)
				b.ReportMetric(float64(counts.Commits())/float64(b.N), "commits/op")
				b.ReportMetric(float64(wal)/float64(b.N), "wal-bytes/op")
				b.ReportMetric(float64(rows*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// walLSN returns the server's WAL write position, in bytes.
func walLSN(tb testing.TB, db *pgxpool.Pool) int64 {
	tb.Helper()
	var lsn int64
	if err := db.QueryRow(context.Background(), "SELECT pg_current_wal_lsn() - '0/0'").Scan(&lsn); err != nil {
		tb.Fatalf("read the WAL position: %v", err)
	}
	return lsn
}

// BenchmarkPgbenchInit is the physical reference: pgbench -i's own COPY of
// 100,000 rows a scale into pgbench_accounts (its data-generation step only,
// -I g, on tables made before the loop), on a copy of the shop of its own,
// through the same WORKSHOP_RTT as the imports.
func BenchmarkPgbenchInit(b *testing.B) {
	pgbench, err := benchkit.FindPgbench()
	if err != nil {
		b.Fatal(err)
	}
	scale := 1
	b.Run(benchkit.Name("impl", "pgbench")+"/"+benchkit.Name("rows", 100_000*scale), func(b *testing.B) {
		db := pgtest.ShopClone(b, writesScale)
		run := func(steps string) {
			benchkit.RunPgbench(b, pgbench, db, "-i", "-q", "-I", steps, "-s", strconv.Itoa(scale))
		}
		run("dt") // drop and create the tables, once
		for b.Loop() {
			run("g") // TRUNCATE, then COPY the rows: a fresh pgbench_accounts each time
		}
		b.ReportMetric(float64(100_000*scale*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// TestImportOrdersTwiceAtOnce runs the same import twice at once: for every
// all-or-nothing version, one lands it and the other is refused, every row
// named, having written nothing; the upsert lands it twice, to the same rows.
func TestImportOrdersTwiceAtOnce(t *testing.T) {
	const n = 300
	orders := importedOrders(n, importedIDs)
	for _, imp := range importers() {
		if !imp.allOrNothing {
			continue
		}
		t.Run(benchkit.Name("impl", imp.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, writesScale)
			start := make(chan struct{})
			errs := make(chan error, 2)
			for range 2 {
				go func() {
					<-start
					errs <- imp.importOrders(context.Background(), db, orders)
				}()
			}
			close(start)
			first, second := <-errs, <-errs
			if imp.name == "upsert" {
				require.NoError(t, first)
				require.NoError(t, second)
			} else {
				if first == nil {
					first, second = second, first
				}
				require.NoError(t, second, "one of the two lands")
				var rowErr *shop.RowError
				require.ErrorAs(t, first, &rowErr, "the other is refused")
				require.Len(t, rowErr.Rows, n, "every row named: %v", first)
			}
			require.Equal(t, orders, importedRows(t, db, importedIDs, importedIDs+n-1))
		})
	}
}

// TestImportOrdersCommitsAreCountedOnEveryPath checks the harness's commit
// count, which the tests above assert and the benchmark reports, on every
// way a write reaches the server: autocommit, an explicit transaction
// committed, rolled back or failed, a batch outside and inside one, and a
// COPY outside and inside one.
func TestImportOrdersCommitsAreCountedOnEveryPath(t *testing.T) {
	db := pgtest.ShopClone(t, writesScale)
	id := int64(importedIDs)
	next := func() int64 { id++; return id }
	const insert = `INSERT INTO orders (id, user_id, status, created_at) VALUES ($1, 1, 'pending', now())`
	const insertUnknownUser = `INSERT INTO orders (id, user_id, status, created_at) VALUES ($1, -1, 'pending', now())`
	copyRows := func(ctx context.Context, q interface {
		CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
	}, userID int64) error {
		rows := [][]any{{next(), userID, "pending", time.Now()}, {next(), userID, "pending", time.Now()}}
		_, err := q.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"id", "user_id", "status", "created_at"}, pgx.CopyFromRows(rows))
		return err
	}
	paths := []struct {
		name    string
		commits int64
		write   func(ctx context.Context) error
	}{
		{"autocommit", 1, func(ctx context.Context) error {
			_, err := db.Exec(ctx, insert, next())
			return err
		}},
		{"autocommit that fails", 0, func(ctx context.Context) error {
			_, err := db.Exec(ctx, insertUnknownUser, next())
			return expectError(err)
		}},
		{"autocommit read, as pg_stat_database counts it", 1, func(ctx context.Context) error {
			var n int64
			return db.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n)
		}},
		{"transaction committed", 1, func(ctx context.Context) error {
			return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				for range 3 {
					if _, err := tx.Exec(ctx, insert, next()); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{"transaction rolled back", 0, func(ctx context.Context) error {
			tx, err := db.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, insert, next()); err != nil {
				return err
			}
			return tx.Rollback(ctx)
		}},
		{"commit of a failed transaction, which rolls back", 0, func(ctx context.Context) error {
			tx, err := db.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			_, err = tx.Exec(ctx, insertUnknownUser, next())
			if err := expectError(err); err != nil {
				return err
			}
			_, err = tx.Conn().Exec(ctx, "COMMIT") // answered ROLLBACK, without an error
			return err
		}},
		{"batch", 1, func(ctx context.Context) error {
			var batch pgx.Batch
			for range 3 {
				batch.Queue(insert, next())
			}
			return db.SendBatch(ctx, &batch).Close()
		}},
		{"batch that fails", 0, func(ctx context.Context) error {
			var batch pgx.Batch
			batch.Queue(insert, next())
			batch.Queue(insertUnknownUser, next())
			return expectError(db.SendBatch(ctx, &batch).Close())
		}},
		{"batch in a transaction", 1, func(ctx context.Context) error {
			return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				var batch pgx.Batch
				for range 3 {
					batch.Queue(insert, next())
				}
				return tx.SendBatch(ctx, &batch).Close()
			})
		}},
		{"copy", 1, func(ctx context.Context) error { return copyRows(ctx, db, 1) }},
		{"copy that fails", 0, func(ctx context.Context) error { return expectError(copyRows(ctx, db, -1)) }},
		{"copies in a transaction", 1, func(ctx context.Context) error {
			return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				if err := copyRows(ctx, tx, 1); err != nil {
					return err
				}
				return copyRows(ctx, tx, 1)
			})
		}},
	}
	for _, p := range paths {
		ctx, counts := pgtest.CountQueries(context.Background())
		require.NoError(t, p.write(ctx), p.name)
		require.Equal(t, p.commits, counts.Commits(), p.name)
	}
}

// expectError returns nil if err is an error, and an error if it is nil.
func expectError(err error) error {
	if err == nil {
		return errors.New("no error: want one")
	}
	return nil
}
