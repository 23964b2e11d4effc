-- A wrong answer to lesson 20's exercise: CONCURRENTLY, outside a
-- transaction, IF NOT EXISTS: run again after a cancelled build, it finds
-- the index that build left behind, INVALID, and builds nothing.
-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total_cents_idx ON orders (total_cents);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
