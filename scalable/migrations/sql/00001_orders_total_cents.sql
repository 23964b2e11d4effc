-- An order's total, kept on the order so a report need not sum its items.
-- ALTER TABLE takes an ACCESS EXCLUSIVE lock on orders, and while it waits
-- for one, every query on orders waits behind it: lock_timeout makes it give
-- up after 100 ms instead (SQLSTATE 55P03), and Migrate tries again later.
-- SET LOCAL lasts as long as this migration's transaction.
--
-- This is the expand step: from its commit on, triggers keep the total of
-- every order a release writes, so that the backfill (migration 2) has only
-- the orders that existed before to fill, and none is left NULL behind it.
-- A new order gets the total of its items (none yet, as a rule); a write to
-- order_items sets the total of its order again, from all its items. Both
-- ALTER and CREATE TRIGGER wait for the writers already running, so every
-- write they let through after this commit runs the triggers.
-- +goose Up
SET LOCAL lock_timeout = '100ms';
ALTER TABLE orders ADD COLUMN total_cents bigint;

-- +goose StatementBegin
CREATE FUNCTION orders_total_cents(order_id bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(i.quantity * i.price_cents), 0)
      FROM order_items i
     WHERE i.order_id = orders_total_cents.order_id
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION orders_new_total() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.total_cents := coalesce(NEW.total_cents, orders_total_cents(NEW.id));
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- The order is locked first, by a statement of its own, and its total
-- summed by the next: that one takes a new snapshot (READ COMMITTED), so
-- it sees the items of every transaction that held the order before, a
-- batch of the backfill or another write to the same order's items.
-- +goose StatementBegin
CREATE FUNCTION order_items_sync_total() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed bigint;
BEGIN
    FOREACH changed IN ARRAY CASE TG_OP
        WHEN 'INSERT' THEN ARRAY[NEW.order_id]
        WHEN 'DELETE' THEN ARRAY[OLD.order_id]
        ELSE ARRAY(SELECT DISTINCT u FROM unnest(ARRAY[OLD.order_id, NEW.order_id]) u ORDER BY u)
    END LOOP
        PERFORM FROM orders WHERE id = changed FOR UPDATE;
        UPDATE orders SET total_cents = orders_total_cents(changed) WHERE id = changed;
    END LOOP;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER orders_new_total BEFORE INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_new_total();
CREATE TRIGGER order_items_sync_total AFTER INSERT OR UPDATE OR DELETE ON order_items
    FOR EACH ROW EXECUTE FUNCTION order_items_sync_total();

-- +goose Down
SET LOCAL lock_timeout = '100ms';
DROP TRIGGER order_items_sync_total ON order_items;
DROP TRIGGER orders_new_total ON orders;
DROP FUNCTION order_items_sync_total();
DROP FUNCTION orders_new_total();
DROP FUNCTION orders_total_cents(bigint);
ALTER TABLE orders DROP COLUMN total_cents;
