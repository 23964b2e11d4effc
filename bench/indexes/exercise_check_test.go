package indexes

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
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
// copy of the shop: the check creates the index. When the plan still reads too
// much, the check says what the catalog shows of the index the statement made
// (its table, kind, columns and predicate), not what it guesses.
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
	before, err := indexesOf(ctx, db)
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, createIndex); err != nil {
		return fmt.Errorf("your index: %w", err)
	}
	after, err := indexesOf(ctx, db)
	if err != nil {
		return err
	}
	var made []madeIndex
	for _, ix := range after {
		if !slices.ContainsFunc(before, func(b madeIndex) bool { return b.Name == ix.Name }) {
			made = append(made, ix)
		}
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
		return fmt.Errorf("with your index the plan still does %v of order_items and reads %d rows for a product in %d orders: %s",
			scans, read, want.Orders, whyNotUsed(made))
	}
	t.Logf("with your index: %v of order_items, %d rows read for a product in %d orders", scans, read, want.Orders)
	return nil
}

// A madeIndex is an index as the catalog describes it.
type madeIndex struct {
	Name, Table, Kind string
	First             string // the first key column, or "" for an expression
	Definition        string // pg_get_indexdef
	Predicate         string // a partial index's WHERE, or ""
}

// indexesOf returns the indexes of the tables in db's public schema.
func indexesOf(ctx context.Context, db *pgxpool.Pool) ([]madeIndex, error) {
	const indexesQuery = `
		SELECT ix.relname, tab.relname, am.amname, coalesce(att.attname, ''),
			pg_get_indexdef(i.indexrelid), coalesce(pg_get_expr(i.indpred, i.indrelid), '')
		FROM pg_index i
		JOIN pg_class ix ON ix.oid = i.indexrelid
		JOIN pg_class tab ON tab.oid = i.indrelid
		JOIN pg_namespace ns ON ns.oid = tab.relnamespace AND ns.nspname = 'public'
		JOIN pg_am am ON am.oid = ix.relam
		LEFT JOIN pg_attribute att ON att.attrelid = i.indrelid AND att.attnum = i.indkey[0] AND i.indkey[0] <> 0`
	rows, err := db.Query(ctx, indexesQuery)
	if err != nil {
		return nil, fmt.Errorf("the indexes in the catalog: %w", err)
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[madeIndex])
	if err != nil {
		return nil, fmt.Errorf("the indexes in the catalog: %w", err)
	}
	return indexes, nil
}

// whyNotUsed says, in lesson 3's words, what the catalog shows of the indexes
// the answer made that keeps the plan from reading the product's rows alone.
func whyNotUsed(made []madeIndex) string {
	const where = "ProductSales's WHERE tests product_id = $1"
	if len(made) == 0 {
		return "your statement made no index that the catalog shows"
	}
	var onItems []madeIndex
	for _, ix := range made {
		if ix.Table == "order_items" {
			onItems = append(onItems, ix)
		}
	}
	if len(onItems) == 0 {
		return fmt.Sprintf("your index is on %s (%s); %s, on order_items", made[0].Table, made[0].Definition, where)
	}
	ix := onItems[0]
	switch {
	case ix.First == "":
		return fmt.Sprintf("your index (%s) starts with an expression; %s itself, and an index serves a WHERE on the very expression it holds", ix.Definition, where)
	case ix.First != "product_id":
		return fmt.Sprintf("your index (%s) starts with %s; %s, and an index helps only when its first column is the one tested", ix.Definition, ix.First, where)
	case ix.Predicate != "":
		return fmt.Sprintf("your index (%s) is partial: it holds only the rows WHERE %s, and the planner uses it only for a query whose WHERE implies that; %s, for any product",
			ix.Definition, ix.Predicate, where)
	case ix.Kind == "brin":
		return fmt.Sprintf("your index (%s) is a BRIN index: it keeps the smallest and largest product_id of each range of table pages, which narrows a scan only when product_id follows the order the rows are stored in; here it does not; the rule in \"The scales version\" is a B-tree's",
			ix.Definition)
	case ix.Kind != "btree":
		return fmt.Sprintf("your index (%s) is a %s index, which the planner did not choose for %s; the lesson's rule is for a B-tree", ix.Definition, ix.Kind, where)
	}
	return fmt.Sprintf("your index (%s) has product_id first, yet the planner did not use it", ix.Definition)
}

func TestExercise03CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise03(t, pgtest.ShopClone(t, shop.Small), "")
	require.ErrorContains(t, err, "no index yet")
	t.Log(err)
}

func TestExercise03CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct{ name, index, want string }{
		{"a column the WHERE does not test", "CREATE INDEX wrong_idx ON order_items (quantity)", "starts with quantity; ProductSales's WHERE tests product_id = $1, and an index helps only when its first column is the one tested"},
		{"product_id second", "CREATE INDEX wrong_idx ON order_items (order_id, product_id)", "starts with order_id; ProductSales's WHERE tests product_id = $1"},
		// Written from the lesson's "What it costs" (a smaller index, a
		// partial one) and its story (the product is what is slow), as a
		// trainee writes them.
		{"BRIN, the small index", "CREATE INDEX wrong_idx ON order_items USING brin (product_id)", "is a BRIN index"},
		{"partial, for one product", "CREATE INDEX wrong_idx ON order_items (product_id) WHERE product_id = 1", "is partial: it holds only the rows WHERE (product_id = 1)"},
		{"the products table", "CREATE INDEX wrong_idx ON products (id, name)", "your index is on products"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise03(t, pgtest.ShopClone(t, shop.Small), tc.index)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise03CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise03(t, pgtest.ShopClone(t, shop.Small), scalable.ProductSalesIndex))
}
