-- An order's total, kept on the order so a report need not sum its items.
-- ALTER TABLE takes an ACCESS EXCLUSIVE lock on orders, and while it waits
-- for one, every query on orders waits behind it: lock_timeout makes it give
-- up after 100 ms instead (SQLSTATE 55P03), and Migrate tries again later.
-- SET LOCAL lasts as long as this migration's transaction.
-- +goose Up
SET LOCAL lock_timeout = '100ms';
ALTER TABLE orders ADD COLUMN total_cents bigint;

-- +goose Down
SET LOCAL lock_timeout = '100ms';
ALTER TABLE orders DROP COLUMN total_cents;
