-- A right answer to lesson 20's exercise that is not the reference's:
-- CONCURRENTLY, outside a transaction, after a DROP INDEX CONCURRENTLY of
-- what a cancelled build left. The drop waits for a reader of orders as a
-- concurrent build does, without an ACCESS EXCLUSIVE lock that queries
-- would queue behind; it drops a valid index too, which the build then
-- builds again.
-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
CREATE INDEX CONCURRENTLY orders_total_cents_idx ON orders (total_cents);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
