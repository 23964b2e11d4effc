-- Contract: run only once every running release reads and writes
-- phone_number (the old release is gone), and the backfill is done.
-- +goose Up
SET LOCAL lock_timeout = '100ms';
DROP TRIGGER users_sync_phone ON users;
DROP FUNCTION users_sync_phone();
ALTER TABLE users DROP COLUMN phone;

-- +goose Down
-- A contract cannot be undone: the old release's column is gone. Down
-- refuses, so that goose does not record a rollback that never happened;
-- going back means expanding again, as a new migration (phone beside
-- phone_number, a trigger, a backfill), or a restore from before the
-- contract.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE EXCEPTION 'migration 6 (contract phone) cannot be undone: users.phone is dropped; expand again with a new migration, or restore from before the contract'
        USING ERRCODE = 'feature_not_supported';
END
$$;
-- +goose StatementEnd
