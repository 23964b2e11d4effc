-- users.phone becomes users.phone_number, in one step: the release still
-- running, which reads and writes phone, fails from this commit on.
-- +goose Up
ALTER TABLE users RENAME COLUMN phone TO phone_number;

-- +goose Down
ALTER TABLE users RENAME COLUMN phone_number TO phone;
