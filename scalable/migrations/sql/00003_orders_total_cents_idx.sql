-- The biggest orders first, for the finance report. CONCURRENTLY builds the
-- index while writes go on, and cannot run inside a transaction: NO
-- TRANSACTION tells goose to run each statement on its own.
--
-- A concurrent build that was interrupted (cancelled, a deadlock, a unique
-- violation, the server restarted) leaves the index behind, INVALID: never
-- used by a query, yet maintained by every write. This migration is not
-- recorded as applied until the build succeeds, so an index of this name is
-- such a leftover: drop it, concurrently too, and build it again.
-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
CREATE INDEX CONCURRENTLY orders_total_cents_idx ON orders (total_cents);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_total_cents_idx;
