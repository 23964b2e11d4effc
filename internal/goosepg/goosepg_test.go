package goosepg_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/goosepg"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// migrations are two versions: a table, then a row in it.
var migrations = fstest.MapFS{
	"sql/00001_notes.sql":    {Data: []byte("-- +goose Up\nCREATE TABLE notes (id bigint PRIMARY KEY);\n-- +goose Down\nDROP TABLE notes;\n")},
	"sql/00002_one_note.sql": {Data: []byte("-- +goose Up\nINSERT INTO notes VALUES (1);\n-- +goose Down\nDELETE FROM notes;\n")},
}

func TestUpToAppliesEachVersionOnce(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.NoError(t, goosepg.UpTo(ctx, db, migrations, "sql", 1))
	var notes int
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&notes))
	require.Zero(t, notes, "version 1 only: the table, empty")

	for range 2 { // the second time, nothing is left to apply
		require.NoError(t, goosepg.UpTo(ctx, db, migrations, "sql", 2))
		require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&notes))
		require.Equal(t, 1, notes)
	}
	var version int64
	require.NoError(t, db.QueryRow(ctx, "SELECT max(version_id) FROM goose_db_version").Scan(&version))
	require.Equal(t, int64(2), version)
}

func TestUpToNamesTheDirectoryItFailsOn(t *testing.T) {
	ctx := context.Background()
	db := pgtest.ShopClone(t, shop.Small)
	require.ErrorContains(t, goosepg.UpTo(ctx, db, migrations, "missing", 1), "missing")

	broken := fstest.MapFS{"bad/00001_broken.sql": {Data: []byte("-- +goose Up\nCREATE TABLE;\n")}}
	err := goosepg.UpTo(ctx, db, broken, "bad", 1)
	require.ErrorContains(t, err, "migrate bad to version 1")
	var exists bool
	require.NoError(t, db.QueryRow(ctx, "SELECT EXISTS (SELECT FROM goose_db_version WHERE version_id = 1)").Scan(&exists))
	require.False(t, exists, "a failed migration is not recorded")
}
