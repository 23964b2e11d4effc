-- Contract: run only once every running release reads and writes
-- phone_number (the old release is gone), and the backfill is done.
-- +goose Up
SET LOCAL lock_timeout = '100ms';
DROP TRIGGER users_sync_phone ON users;
DROP FUNCTION users_sync_phone();
ALTER TABLE users DROP COLUMN phone;

-- +goose Down
-- Back to one column only: the old release's data is in phone_number, and
-- going back means expanding again (migrations 4 and 5, the other way).
SELECT 1;
