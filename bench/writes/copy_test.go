package writes

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// Lesson 14's explanation, measured: the same COPY of the same orders and
// items, in one transaction, into tables that differ only in what the server
// checks and maintains per row. Each variant prepares its copy of the shop
// (prepare), then imports (load); none is a way to import that the lesson
// recommends, they are the experiment that says where the time goes.

// copyVariant is one such table set-up.
type copyVariant struct {
	name    string
	prepare func(ctx context.Context, db *pgxpool.Pool) error
	load    func(ctx context.Context, tx pgx.Tx, orders []shop.Order) error
	// ordersTable and itemsTable are where the rows land.
	ordersTable, itemsTable string
}

func copyVariants() []copyVariant {
	nothing := func(context.Context, *pgxpool.Pool) error { return nil }
	return []copyVariant{
		{"keys-fks", nothing, copyInto("orders", "order_items"), "orders", "order_items"},
		{"deferred-fks", deferForeignKeys, copyInto("orders", "order_items"), "orders", "order_items"},
		{"staging", makeStagingTables, copyThroughStaging, "orders", "order_items"},
		{"keys-no-fks", dropForeignKeys, copyInto("orders", "order_items"), "orders", "order_items"},
		{"plain", makePlainTables, copyInto("plain_orders", "plain_order_items"), "plain_orders", "plain_order_items"},
	}
}

// shopForeignKeys are the foreign keys an import's rows are checked against:
// each order's user, each item's order and product.
var shopForeignKeys = []struct{ table, name string }{
	{"orders", "orders_user_id_fkey"},
	{"order_items", "order_items_order_id_fkey"},
	{"order_items", "order_items_product_id_fkey"},
}

func dropForeignKeys(ctx context.Context, db *pgxpool.Pool) error {
	for _, fk := range shopForeignKeys {
		sql := fmt.Sprintf(`ALTER TABLE %s DROP CONSTRAINT %s`, fk.table, fk.name)
		if _, err := db.Exec(ctx, sql); err != nil {
			return fmt.Errorf("drop %s of %s: %w", fk.name, fk.table, err)
		}
	}
	return nil
}

// deferForeignKeys makes the foreign keys checked at commit, once a row, not
// after each statement: the same checks, later.
func deferForeignKeys(ctx context.Context, db *pgxpool.Pool) error {
	for _, fk := range shopForeignKeys {
		sql := fmt.Sprintf(`ALTER TABLE %s ALTER CONSTRAINT %s DEFERRABLE INITIALLY DEFERRED`, fk.table, fk.name)
		if _, err := db.Exec(ctx, sql); err != nil {
			return fmt.Errorf("defer %s of %s: %w", fk.name, fk.table, err)
		}
	}
	return nil
}

// makePlainTables makes tables with the columns of orders and order_items
// and nothing else: no key, no foreign key, no index.
func makePlainTables(ctx context.Context, db *pgxpool.Pool) error {
	const makePlain = `CREATE TABLE plain_orders (LIKE orders); CREATE TABLE plain_order_items (LIKE order_items)`
	if _, err := db.Exec(ctx, makePlain); err != nil {
		return fmt.Errorf("make plain tables: %w", err)
	}
	return nil
}

// makeStagingTables makes unlogged tables without keys to COPY into first.
func makeStagingTables(ctx context.Context, db *pgxpool.Pool) error {
	const makeStaging = `CREATE UNLOGGED TABLE staged_orders (LIKE orders); CREATE UNLOGGED TABLE staged_order_items (LIKE order_items)`
	if _, err := db.Exec(ctx, makeStaging); err != nil {
		return fmt.Errorf("make staging tables: %w", err)
	}
	return nil
}

func copyInto(ordersTable, itemsTable string) func(ctx context.Context, tx pgx.Tx, orders []shop.Order) error {
	return func(ctx context.Context, tx pgx.Tx, orders []shop.Order) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{ordersTable}, []string{"id", "user_id", "status", "created_at"}, pgx.CopyFromRows(orderRows(orders))); err != nil {
			return fmt.Errorf("copy %d orders into %s: %w", len(orders), ordersTable, err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{itemsTable}, []string{"order_id", "line_no", "product_id", "quantity", "price_cents"}, pgx.CopyFromRows(itemRows(orders))); err != nil {
			return fmt.Errorf("copy the items of %d orders into %s: %w", len(orders), itemsTable, err)
		}
		return nil
	}
}

// copyThroughStaging copies into the staging tables, then moves the rows
// into the shop's with one INSERT … SELECT a table.
func copyThroughStaging(ctx context.Context, tx pgx.Tx, orders []shop.Order) error {
	if err := copyInto("staged_orders", "staged_order_items")(ctx, tx, orders); err != nil {
		return err
	}
	const move = `
		INSERT INTO orders (id, user_id, status, created_at) SELECT id, user_id, status, created_at FROM staged_orders;
		INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
			SELECT order_id, line_no, product_id, quantity, price_cents FROM staged_order_items;
		TRUNCATE staged_orders, staged_order_items`
	if _, err := tx.Exec(ctx, move); err != nil {
		return fmt.Errorf("move %d staged orders: %w", len(orders), err)
	}
	return nil
}

func orderRows(orders []shop.Order) [][]any {
	rows := make([][]any, len(orders))
	for i, o := range orders {
		rows[i] = []any{o.ID, o.UserID, o.Status, o.CreatedAt}
	}
	return rows
}

func itemRows(orders []shop.Order) [][]any {
	var rows [][]any
	for _, o := range orders {
		for _, item := range o.Items {
			rows = append(rows, []any{o.ID, item.LineNo, item.Product.ID, item.Quantity, item.PriceCents})
		}
	}
	return rows
}

func loadInOneTransaction(ctx context.Context, db *pgxpool.Pool, v copyVariant, orders []shop.Order) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return v.load(ctx, tx, orders) })
}

// TestCopyVariantsLandTheSameRows: every variant of the experiment writes
// every order and every item, twice over, no more: they compare the same work.
func TestCopyVariantsLandTheSameRows(t *testing.T) {
	const n = 500
	ctx := context.Background()
	for _, v := range copyVariants() {
		t.Run(benchkit.Name("impl", v.name), func(t *testing.T) {
			db := pgtest.ShopClone(t, writesScale)
			require.NoError(t, v.prepare(ctx, db))
			orders := importedOrders(n, importedIDs)
			require.NoError(t, loadInOneTransaction(ctx, db, v, orders))
			require.NoError(t, loadInOneTransaction(ctx, db, v, importedOrders(n, importedIDs+n)))
			count := func(table, idColumn string) int64 {
				var rows int64
				sql := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s >= $1`, table, idColumn)
				require.NoError(t, db.QueryRow(ctx, sql, int64(importedIDs)).Scan(&rows))
				return rows
			}
			require.Equal(t, int64(2*n), count(v.ordersTable, "id"), "orders")
			require.Equal(t, 2*itemsOf(orders), count(v.itemsTable, "order_id"), "items")
		})
	}
}

// TestDeferredForeignKeysStillRefuseAnUnknownProduct: deferring the keys
// moves the check to the commit; it does not drop it.
func TestDeferredForeignKeysStillRefuseAnUnknownProduct(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, writesScale)
	require.NoError(t, deferForeignKeys(ctx, db))
	orders := importedOrders(3, importedIDs)
	orders[1].Items[0].Product.ID = 1 << 40
	err := loadInOneTransaction(ctx, db, copyVariants()[1], orders)
	require.ErrorContains(t, err, "order_items_product_id_fkey")
	var written int64
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id >= $1`, int64(importedIDs)).Scan(&written))
	require.Zero(t, written, "nothing written")
}

// BenchmarkCopyInto: the same COPY of n orders and their items, in one
// transaction, into the shop's tables with their keys and foreign keys, with
// the foreign keys deferred, through unlogged staging tables, without the
// foreign keys, and into plain tables; each variant on a copy of the shop
// of its own.
func BenchmarkCopyInto(b *testing.B) {
	top := 10_000
	if benchkit.Large() {
		top = 100_000
	}
	if testing.Short() {
		top = 1000
	}
	for _, v := range copyVariants() {
		for _, n := range benchkit.Ladder(1000, top) {
			b.Run(benchkit.Name("impl", v.name)+"/"+benchkit.Name("orders", n), func(b *testing.B) {
				ctx := context.Background()
				db := pgtest.ShopClone(b, writesScale)
				if err := v.prepare(ctx, db); err != nil {
					b.Fatal(err)
				}
				orders := importedOrders(n, importedIDs)
				rows := int64(n) + itemsOf(orders)
				if err := loadInOneTransaction(ctx, db, v, importedOrders(1, importedIDs/2)); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if err := loadInOneTransaction(ctx, db, v, orders); err != nil {
						b.Fatal(err)
					}
					for i := range orders { // the next import's ids
						orders[i].ID += int64(n)
					}
				}
				b.ReportMetric(float64(rows*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkCommit: the commit a naive import pays per row: one row inserted
// and committed (autocommit), with synchronous_commit on (the server waits
// for the WAL to reach the disk) and off (it does not). The difference is
// this machine's disk flush.
func BenchmarkCommit(b *testing.B) {
	for _, sync := range []string{"on", "off"} {
		b.Run(benchkit.Name("impl", "sync-"+sync), func(b *testing.B) {
			ctx := context.Background()
			db := pgtest.ShopClone(b, writesScale)
			conn, err := db.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			const setUp = `CREATE TABLE commits (n bigint NOT NULL)`
			if _, err := conn.Exec(ctx, setUp); err != nil {
				b.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "SELECT set_config('synchronous_commit', $1, false)", sync); err != nil {
				b.Fatal(err)
			}
			const insert = `INSERT INTO commits (n) VALUES ($1)`
			n := 0
			for b.Loop() {
				n++
				if _, err := conn.Exec(ctx, insert, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
