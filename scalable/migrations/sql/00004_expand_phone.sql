-- Expand: users.phone_number beside users.phone, and a trigger that copies
-- whichever of the two a release writes into the other, so the old release
-- (phone) and the new one (phone_number) both read what either wrote.
-- Migration 5 backfills phone_number; migration 6 drops phone once no
-- running release reads it.
-- +goose Up
SET LOCAL lock_timeout = '100ms';
ALTER TABLE users ADD COLUMN phone_number text;

-- +goose StatementBegin
CREATE FUNCTION users_sync_phone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.phone_number := coalesce(NEW.phone_number, NEW.phone);
        NEW.phone := coalesce(NEW.phone, NEW.phone_number);
    ELSIF NEW.phone IS DISTINCT FROM OLD.phone THEN
        NEW.phone_number := NEW.phone;
    ELSIF NEW.phone_number IS DISTINCT FROM OLD.phone_number THEN
        NEW.phone := NEW.phone_number;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER users_sync_phone BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_sync_phone();

-- +goose Down
SET LOCAL lock_timeout = '100ms';
DROP TRIGGER users_sync_phone ON users;
DROP FUNCTION users_sync_phone();
ALTER TABLE users DROP COLUMN phone_number;
