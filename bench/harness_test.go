package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// The harness itself: what every lesson's numbers stand on.

func TestShopHoldsTheGeneratedRows(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	var users, orders int
	require.NoError(t, db.QueryRow(context.Background(),
		"SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders)").Scan(&users, &orders))
	assert.Equal(t, shop.Small.Users(), users)
	assert.Equal(t, shop.Small.Orders(), orders)
}

func TestShopIsReadOnly(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	_, err := db.Exec(context.Background(), "DELETE FROM order_items")
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a PostgreSQL error, got %v", err)
	assert.Equal(t, "25006", pgErr.Code, "read_only_sql_transaction")
}

func TestShopCloneIsWritableAndDroppedAfter(t *testing.T) {
	var cloneName string
	t.Run("write", func(t *testing.T) {
		clone := pgtest.ShopClone(t, shop.Small)
		ctx := context.Background()
		require.NoError(t, clone.QueryRow(ctx, "SELECT current_database()").Scan(&cloneName))
		tag, err := clone.Exec(ctx, "DELETE FROM comments")
		require.NoError(t, err)
		assert.Positive(t, tag.RowsAffected())
	})
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	var exists bool
	require.NoError(t, db.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", cloneName).Scan(&exists))
	assert.False(t, exists, "clone %s dropped when its test ended", cloneName)
	var comments int
	require.NoError(t, db.QueryRow(ctx, "SELECT count(*) FROM comments").Scan(&comments))
	assert.Positive(t, comments, "the clone's writes never reach the shared shop")
}

func TestTemplateIsSeededOnceAndReused(t *testing.T) {
	db := pgtest.Shop(t, shop.Small) // seeds the template if no earlier run did
	ctx := context.Background()
	const templateQuery = `SELECT oid, datistemplate, datallowconn FROM pg_database WHERE datname = $1`
	var oid uint32
	var isTemplate, allowsConnections bool
	name := pgtest.TemplateName(shop.Small)
	require.NoError(t, db.QueryRow(ctx, templateQuery, name).Scan(&oid, &isTemplate, &allowsConnections))
	assert.True(t, isTemplate)
	assert.False(t, allowsConnections, "nobody connects to a template, so copying it never waits")

	pgtest.ShopClone(t, shop.Small) // asks for the template again
	var oidAfter uint32
	require.NoError(t, db.QueryRow(ctx, templateQuery, name).Scan(&oidAfter, &isTemplate, &allowsConnections))
	assert.Equal(t, oid, oidAfter, "the same template, not seeded again")
}
