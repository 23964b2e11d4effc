-- Version 1 of the wrong answers to lesson 20's exercise whose mistake is in
-- the backfill (exercise_check_test.go): the column, with a lock_timeout (the
-- fixture retries it), and no trigger; each fixture's version 2, a Go
-- migration, does the rest.
-- +goose Up
SET LOCAL lock_timeout = '100ms';
ALTER TABLE orders ADD COLUMN total_cents bigint;

-- +goose Down
SET LOCAL lock_timeout = '100ms';
ALTER TABLE orders DROP COLUMN total_cents;
