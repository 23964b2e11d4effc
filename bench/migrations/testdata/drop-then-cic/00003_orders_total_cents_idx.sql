-- A wrong answer to lesson 20's exercise: CONCURRENTLY, outside a
-- transaction, after a plain DROP INDEX of what a cancelled build left, with
-- no lock_timeout: the DROP takes an ACCESS EXCLUSIVE lock on orders, and
-- while it waits for a reader, every query on orders queues behind it.
-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX IF EXISTS orders_total_cents_idx;
CREATE INDEX CONCURRENTLY orders_total_cents_idx ON orders (total_cents);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
