-- Every order's total, in one statement: one transaction that locks and
-- rewrites every order until it commits. It sums what its snapshot, taken
-- when it starts, sees: an order placed while it runs or after it has no
-- total, and an item added changes no total.
-- +goose Up
UPDATE orders o
   SET total_cents = (SELECT coalesce(sum(i.quantity * i.price_cents), 0)
                        FROM order_items i
                       WHERE i.order_id = o.id)
 WHERE o.total_cents IS NULL;

-- +goose Down
UPDATE orders SET total_cents = NULL;
