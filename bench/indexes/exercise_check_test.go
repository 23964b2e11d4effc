package indexes

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/indexes"
	scalable "works-vs-scales/scalable/indexes"
	"works-vs-scales/shop"
)

// Lesson 3's exercise, in exercises/indexes. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise03, is in exercise_test.go, behind the exercise tag.

// checkExercise03 says what is still wrong with an answer to lesson 3's
// exercise, or nil when it is done: with the index created, ProductSales reads
// the product's order items and no others, and answers as before. db must be a
// copy of the shop: the check creates the index.
func checkExercise03(t testing.TB, db *pgxpool.Pool, createIndex string) error {
	ctx := context.Background()
	productID := int64(shop.Small.Products()) // among the least sold
	want, err := naive.ProductSales(ctx, db, productID)
	if err != nil {
		return fmt.Errorf("the sales to compare with: %w", err)
	}
	if createIndex == "" {
		return fmt.Errorf("no index yet: write the CREATE INDEX statement in ProductSalesIndex")
	}
	if _, err := db.Exec(ctx, createIndex); err != nil {
		return fmt.Errorf("your index: %w", err)
	}
	if _, err := db.Exec(ctx, "ANALYZE order_items"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	recorded, queries := pgtest.RecordQueries(ctx)
	got, err := naive.ProductSales(recorded, db, productID)
	if err != nil {
		return fmt.Errorf("sales with your index: %w", err)
	}
	if got != want {
		return fmt.Errorf("sales with your index are %+v, want %+v", got, want)
	}
	plan, err := pgtest.Explain(ctx, db, queries.Queries()[0])
	if err != nil {
		return err
	}
	scans, read := plan.Scans("order_items"), plan.RowsRead("order_items")
	if slices.Contains(scans, "Seq Scan") || read > want.Orders*8 {
		return fmt.Errorf("with your index the plan still does %v of order_items and reads %d rows for a product in %d orders: "+
			"ProductSales's WHERE tests product_id, and an index helps only when its first column is the one tested",
			scans, read, want.Orders)
	}
	t.Logf("with your index: %v of order_items, %d rows read for a product in %d orders", scans, read, want.Orders)
	return nil
}

func TestExercise03CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise03(t, pgtest.ShopClone(t, shop.Small), "")
	require.ErrorContains(t, err, "no index yet")
	t.Log(err)
}

func TestExercise03CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct{ name, index string }{
		{"a column the WHERE does not test", "CREATE INDEX wrong_idx ON order_items (quantity)"},
		{"product_id second", "CREATE INDEX wrong_idx ON order_items (order_id, product_id)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise03(t, pgtest.ShopClone(t, shop.Small), tc.index)
			require.ErrorContains(t, err, "an index helps only when its first column is the one tested")
			t.Log(err)
		})
	}
}

func TestExercise03CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise03(t, pgtest.ShopClone(t, shop.Small), scalable.ProductSalesIndex))
}
