//go:build exercise

package bench

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	bulkhead "works-vs-scales/exercises/bulkheads"
	caching "works-vs-scales/exercises/caching"
	breaker "works-vs-scales/exercises/circuitbreaker"
	indexes "works-vs-scales/exercises/indexes"
	nestedloops "works-vs-scales/exercises/nestedloops"
	nplusone "works-vs-scales/exercises/nplusone"
	pagination "works-vs-scales/exercises/pagination"
	retry "works-vs-scales/exercises/retries"
	stampede "works-vs-scales/exercises/stampede"
	export "works-vs-scales/exercises/streaming"
	validation "works-vs-scales/exercises/validation"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// The trainee's checks: go test -tags exercise -run ExerciseNN ./bench

func TestExercise01(t *testing.T) {
	require.NoError(t, checkExercise01(t, pgtest.ShopClone(t, shop.Small), nplusone.ListPostsWithComments))
}

func TestExercise02(t *testing.T) {
	require.NoError(t, checkExercise02(t, pgtest.ShopClone(t, shop.Small), pagination.ListFeedPage))
}

func TestExercise03(t *testing.T) {
	require.NoError(t, checkExercise03(t, pgtest.ShopClone(t, shop.Small), indexes.ProductSalesIndex))
}

func TestExercise04(t *testing.T) {
	require.NoError(t, checkExercise04(t, pgtest.Shop(t, shop.Small), export.ExportOrderItemsCSV))
}

func TestExercise05(t *testing.T) {
	require.NoError(t, checkExercise05(t, nestedloops.CommonCustomers))
}

func TestExercise06(t *testing.T) {
	require.NoError(t, checkExercise06(t, pgtest.ShopClone(t, shop.Small), func(db *pgxpool.Pool) (categoryCounter, error) { return caching.NewCatalog(db) }))
}

func TestExercise07(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	dashboard, err := stampede.NewDashboard(db)
	require.NoError(t, err, "your NewDashboard")
	require.NoError(t, checkExercise07(t, db, dashboard))
}

func TestExercise08(t *testing.T) {
	require.NoError(t, checkExercise08(t, pgtest.ShopClone(t, shop.Small), validation.PaymentsInCurrency))
}

func TestExercise09(t *testing.T) {
	require.NoError(t, checkExercise09(t, func(db *pgxpool.Pool, gw *gateway.Client) payer {
		payments, err := retry.NewPayments(db, gw)
		require.NoError(t, err)
		return payments
	}))
}

func TestExercise10(t *testing.T) {
	require.NoError(t, checkExercise10(t, func(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) payer {
		payments, err := breaker.NewPayments(db, gw, timeout)
		require.NoError(t, err)
		return payments
	}))
}

func TestExercise11(t *testing.T) {
	require.NoError(t, checkExercise11(t, func(db *pgxpool.Pool) (closingWorkloads, error) { return bulkhead.New(db) }))
}
