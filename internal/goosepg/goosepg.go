// Package goosepg runs goose (github.com/pressly/goose/v3) migrations on a
// database behind a pgx pool: the SQL files of a directory, and the Go
// migrations and other options a caller gives. It is the one place lesson 20
// (naive/migrations, scalable/migrations, exercises/migrations and the
// exercise's check) sets goose up; what each side runs, and how it retries,
// stays with that side.
package goosepg

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// NewProvider returns a goose provider for the migrations in the directory
// dir of fsys (files named by version, 00001_name.sql), on db through
// database/sql, with opts beside goose.WithDisableGlobalRegistry (so that no
// Go migration registered elsewhere in the program slips in). Close the
// provider when done: that closes its database/sql handle, not db.
func NewProvider(db *pgxpool.Pool, fsys fs.FS, dir string, opts ...goose.ProviderOption) (*goose.Provider, error) {
	files, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations in %s: %w", dir, err)
	}
	sqlDB := stdlib.OpenDBFromPool(db)
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, files,
		append([]goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}, opts...)...)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("migrations in %s: %w", dir, err)
	}
	return provider, nil
}

// UpTo applies the migrations in the directory dir of fsys, up to version
// to, each in a transaction of its own unless its file says
// -- +goose NO TRANSACTION, as written: no lock timeout, no retry. goose
// records each version it applies in its table, goose_db_version, so a
// second call applies only what the first did not.
func UpTo(ctx context.Context, db *pgxpool.Pool, fsys fs.FS, dir string, to int64, opts ...goose.ProviderOption) error {
	provider, err := NewProvider(db, fsys, dir, opts...)
	if err != nil {
		return err
	}
	defer provider.Close()
	if _, err := provider.UpTo(ctx, to); err != nil {
		return fmt.Errorf("migrate %s to version %d: %w", dir, to, err)
	}
	return nil
}
