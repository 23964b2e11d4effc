-- The triggers of scalable/migrations/sql/00001, which keep the total of
-- every order written, for the wrong answers to lesson 20's exercise that
-- create them at the wrong time, or drop them too soon
-- (exercise_check_test.go runs this file in one Exec).
CREATE FUNCTION orders_total_cents(order_id bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(i.quantity * i.price_cents), 0)
      FROM order_items i
     WHERE i.order_id = orders_total_cents.order_id
$$;

CREATE FUNCTION orders_new_total() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.total_cents := coalesce(NEW.total_cents, orders_total_cents(NEW.id));
    RETURN NEW;
END
$$;

CREATE FUNCTION order_items_sync_total() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed bigint;
BEGIN
    FOREACH changed IN ARRAY CASE TG_OP
        WHEN 'INSERT' THEN ARRAY[NEW.order_id]
        WHEN 'DELETE' THEN ARRAY[OLD.order_id]
        ELSE ARRAY(SELECT DISTINCT u FROM unnest(ARRAY[OLD.order_id, NEW.order_id]) u)
    END LOOP
        PERFORM FROM orders WHERE id = changed FOR UPDATE;
        UPDATE orders SET total_cents = orders_total_cents(changed) WHERE id = changed;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_new_total BEFORE INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_new_total();
CREATE TRIGGER order_items_sync_total AFTER INSERT OR UPDATE OR DELETE ON order_items
    FOR EACH ROW EXECUTE FUNCTION order_items_sync_total();
