-- The biggest orders first, for the finance report. CREATE INDEX takes a SHARE
-- lock on orders: reads go on, every write waits until the index is built.
-- +goose Up
CREATE INDEX orders_total_cents_idx ON orders (total_cents);

-- +goose Down
DROP INDEX orders_total_cents_idx;
