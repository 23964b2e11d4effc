package writes

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// ImportOrdersInOneTransaction is the naive loop, an INSERT per row, inside
// one transaction: one commit instead of one a row, all or nothing, and
// still a round trip a row.
func ImportOrdersInOneTransaction(ctx context.Context, db *pgxpool.Pool, orders []shop.Order) error {
	if err := check(orders); err != nil {
		return fmt.Errorf("import %d orders, none written: %w", len(orders), err)
	}
	if len(orders) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for i, o := range orders {
			const insertOrder = `INSERT INTO orders (id, user_id, status, created_at) VALUES ($1, $2, $3, $4)`
			if _, err := tx.Exec(ctx, insertOrder, o.ID, o.UserID, o.Status, o.CreatedAt); err != nil {
				return fmt.Errorf("insert order %d (row %d): %w", o.ID, i+1, err)
			}
			for _, item := range o.Items {
				const insertItem = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents) VALUES ($1, $2, $3, $4, $5)`
				if _, err := tx.Exec(ctx, insertItem, o.ID, item.LineNo, item.Product.ID, item.Quantity, item.PriceCents); err != nil {
					return fmt.Errorf("insert order %d (row %d) line %d: %w", o.ID, i+1, item.LineNo, err)
				}
			}
		}
		return nil
	})
	return refused(ctx, db, orders, err)
}

// MaxParameters is the most parameters ($1 … $65535) one statement may have:
// the protocol counts them in 16 bits.
const MaxParameters = 65535

// ImportOrdersMultiRow inserts as many rows a statement as MaxParameters
// allows, INSERT … VALUES ($1, $2, $3, $4), ($5, …), …, in one transaction:
// 16,383 orders or 13,107 items a statement, so a round trip per chunk.
//
// Each chunk size is a statement of its own, parsed and planned once per
// connection; the text of a full chunk is about half a megabyte.
func ImportOrdersMultiRow(ctx context.Context, db *pgxpool.Pool, orders []shop.Order) error {
	if err := check(orders); err != nil {
		return fmt.Errorf("import %d orders, none written: %w", len(orders), err)
	}
	if len(orders) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := insertValues(ctx, tx, "orders", orderColumns, orderRows(orders)); err != nil {
			return err
		}
		return insertValues(ctx, tx, "order_items", itemColumns, itemRows(orders))
	})
	return refused(ctx, db, orders, err)
}

// insertValues inserts rows into table with multi-row INSERTs of at most
// MaxParameters parameters each.
func insertValues(ctx context.Context, tx pgx.Tx, table string, columns []string, rows [][]any) error {
	for chunk := range Chunks(rows, MaxParameters/len(columns)) {
		var sql strings.Builder
		sql.WriteString("INSERT INTO " + pgx.Identifier{table}.Sanitize() + " (" + strings.Join(columns, ", ") + ") VALUES ")
		args := make([]any, 0, len(chunk)*len(columns))
		for r, row := range chunk {
			if r > 0 {
				sql.WriteString(", ")
			}
			sql.WriteByte('(')
			for c := range row {
				if c > 0 {
					sql.WriteString(", ")
				}
				sql.WriteString("$" + strconv.Itoa(len(args)+1))
				args = append(args, row[c])
			}
			sql.WriteByte(')')
		}
		if _, err := tx.Exec(ctx, sql.String(), args...); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", len(chunk), table, err)
		}
	}
	return nil
}

// Chunks yields rows in pieces of at most size (at least 1), in order.
func Chunks[T any](rows []T, size int) func(yield func([]T) bool) {
	size = max(size, 1)
	return func(yield func([]T) bool) {
		for start := 0; start < len(rows); start += size {
			if !yield(rows[start:min(start+size, len(rows))]) {
				return
			}
		}
	}
}

// ImportOrdersUnnest inserts each table's rows with one statement, whatever
// their number: a column an array, turned back into rows by unnest, in one
// transaction. Four parameters are four arrays, so no parameter limit
// applies; the arrays are built in memory, on both sides.
func ImportOrdersUnnest(ctx context.Context, db *pgxpool.Pool, orders []shop.Order) error {
	if err := check(orders); err != nil {
		return fmt.Errorf("import %d orders, none written: %w", len(orders), err)
	}
	if len(orders) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		o := columnsOf(orders)
		const insertOrders = `INSERT INTO orders (id, user_id, status, created_at)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[])`
		if _, err := tx.Exec(ctx, insertOrders, o.ids, o.userIDs, o.statuses, o.createdAt); err != nil {
			return fmt.Errorf("insert %d orders: %w", len(orders), err)
		}
		const insertItems = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::int[], $5::bigint[])`
		if _, err := tx.Exec(ctx, insertItems, o.itemOrderIDs, o.lineNos, o.productIDs, o.quantities, o.prices); err != nil {
			return fmt.Errorf("insert %d items: %w", len(o.lineNos), err)
		}
		return nil
	})
	return refused(ctx, db, orders, err)
}

// columns is a list of orders and their items as a slice a column.
type columns struct {
	ids, userIDs                     []int64
	statuses                         []string
	createdAt                        []time.Time
	itemOrderIDs, productIDs, prices []int64
	lineNos, quantities              []int32
}

func columnsOf(orders []shop.Order) columns {
	c := columns{
		ids:       make([]int64, len(orders)),
		userIDs:   make([]int64, len(orders)),
		statuses:  make([]string, len(orders)),
		createdAt: make([]time.Time, len(orders)),
	}
	for i, o := range orders {
		c.ids[i], c.userIDs[i], c.statuses[i], c.createdAt[i] = o.ID, o.UserID, o.Status, o.CreatedAt
		for _, item := range o.Items {
			c.itemOrderIDs = append(c.itemOrderIDs, o.ID)
			c.lineNos = append(c.lineNos, item.LineNo)
			c.productIDs = append(c.productIDs, item.Product.ID)
			c.quantities = append(c.quantities, item.Quantity)
			c.prices = append(c.prices, item.PriceCents)
		}
	}
	return c
}

// ImportOrdersBatch queues the naive INSERTs, one a row, in a pgx.Batch and
// sends them at once: one round trip, and, outside a transaction, one
// implicit transaction, so all or nothing. The server still parses, plans
// and runs a statement a row.
func ImportOrdersBatch(ctx context.Context, db *pgxpool.Pool, orders []shop.Order) error {
	if err := check(orders); err != nil {
		return fmt.Errorf("import %d orders, none written: %w", len(orders), err)
	}
	if len(orders) == 0 {
		return nil
	}
	var batch pgx.Batch
	for _, o := range orders {
		const insertOrder = `INSERT INTO orders (id, user_id, status, created_at) VALUES ($1, $2, $3, $4)`
		batch.Queue(insertOrder, o.ID, o.UserID, o.Status, o.CreatedAt)
		for _, item := range o.Items {
			const insertItem = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents) VALUES ($1, $2, $3, $4, $5)`
			batch.Queue(insertItem, o.ID, item.LineNo, item.Product.ID, item.Quantity, item.PriceCents)
		}
	}
	err := db.SendBatch(ctx, &batch).Close()
	return refused(ctx, db, orders, err)
}
