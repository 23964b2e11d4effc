package writes

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// UpsertOrders writes the orders and their items as they are given, whether
// or not the shop has them already: INSERT … ON CONFLICT … DO UPDATE from
// unnest, a statement a table, in one transaction. Run twice with the same
// orders, it leaves what one run leaves, so a sync that failed half way, or
// is not sure it ran, runs again.
//
// An item the shop has and the order no longer lists stays: a sync that must
// remove lines deletes them in the same transaction.
func UpsertOrders(ctx context.Context, db *pgxpool.Pool, orders []shop.Order) error {
	if err := check(orders); err != nil {
		return fmt.Errorf("upsert %d orders, none written: %w", len(orders), err)
	}
	if len(orders) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		o := columnsOf(orders)
		const upsertOrders = `INSERT INTO orders (id, user_id, status, created_at)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[])
			ON CONFLICT (id) DO UPDATE
			SET user_id = excluded.user_id, status = excluded.status, created_at = excluded.created_at`
		if _, err := tx.Exec(ctx, upsertOrders, o.ids, o.userIDs, o.statuses, o.createdAt); err != nil {
			return fmt.Errorf("upsert %d orders: %w", len(orders), err)
		}
		const upsertItems = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::int[], $5::bigint[])
			ON CONFLICT (order_id, line_no) DO UPDATE
			SET product_id = excluded.product_id, quantity = excluded.quantity, price_cents = excluded.price_cents`
		if _, err := tx.Exec(ctx, upsertItems, o.itemOrderIDs, o.lineNos, o.productIDs, o.quantities, o.prices); err != nil {
			return fmt.Errorf("upsert %d items: %w", len(o.lineNos), err)
		}
		return nil
	})
	return refusedRows(ctx, db, orders, err, false)
}
