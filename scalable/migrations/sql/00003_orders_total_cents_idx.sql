-- The biggest orders first, for the finance report. CONCURRENTLY builds the
-- index while writes go on, and cannot run inside a transaction: NO
-- TRANSACTION tells goose to run each statement on its own.
--
-- A concurrent build that was interrupted (cancelled, a deadlock, a unique
-- violation, the server restarted) leaves the index behind, INVALID: never
-- used by a query, yet maintained by every write. The DO block drops an
-- index of this name only if it is such a leftover; a valid one, which a DBA
-- may have built ahead of the deploy, is kept, and IF NOT EXISTS then builds
-- nothing.
--
-- The DO block is a transaction, and DROP INDEX CONCURRENTLY cannot run in
-- one: it uses a plain DROP INDEX. That takes an ACCESS EXCLUSIVE lock on
-- orders, held only while the catalog rows go (an invalid index has no data
-- a query reads), but while it waits for the lock, every query on orders
-- waits behind it: lock_timeout, set for the block's transaction only, makes
-- it give up after 100 ms (SQLSTATE 55P03), and Migrate tries again later.
-- +goose NO TRANSACTION
-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relname = 'orders_total_cents_idx'
                  AND c.relnamespace = current_schema()::regnamespace
                  AND NOT i.indisvalid) THEN
        PERFORM set_config('lock_timeout', '100ms', true);
        DROP INDEX orders_total_cents_idx;
    END IF;
END
$$;
-- +goose StatementEnd
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total_cents_idx ON orders (total_cents);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
