-- An order's total, kept on the order so a report need not sum its items.
-- Nullable and without a default: PostgreSQL adds it without rewriting a row,
-- but ALTER TABLE still takes an ACCESS EXCLUSIVE lock on orders.
-- +goose Up
ALTER TABLE orders ADD COLUMN total_cents bigint;

-- +goose Down
ALTER TABLE orders DROP COLUMN total_cents;
