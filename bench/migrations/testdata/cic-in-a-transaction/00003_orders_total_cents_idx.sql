-- A wrong answer to lesson 20's exercise: CONCURRENTLY, but without goose's
-- NO TRANSACTION annotation, so goose runs it in a transaction, where
-- PostgreSQL refuses it.
-- +goose Up
CREATE INDEX CONCURRENTLY orders_total_cents_idx ON orders (total_cents);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
