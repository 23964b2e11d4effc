-- A wrong answer to lesson 20's exercise: CONCURRENTLY, outside a
-- transaction, and nothing for the index a cancelled build leaves behind,
-- INVALID: run again, the build finds its name taken, and fails.
-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY orders_total_cents_idx ON orders (total_cents);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
