//go:build exercise

package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

	export "works-vs-scales/exercises/export"
	indexes "works-vs-scales/exercises/indexes"
	nestedloops "works-vs-scales/exercises/nestedloops"
	nplusone "works-vs-scales/exercises/nplusone"
	pagination "works-vs-scales/exercises/pagination"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
)

// The trainee's checks: go test -tags exercise -run ExerciseNN ./bench

func TestExercise01(t *testing.T) {
	require.NoError(t, checkExercise01(pgtest.Shop(t, shop.Small), nplusone.ListPostsWithComments))
}

func TestExercise02(t *testing.T) {
	require.NoError(t, checkExercise02(pgtest.ShopClone(t, shop.Small), pagination.ListFeedPage))
}

func TestExercise03(t *testing.T) {
	require.NoError(t, checkExercise03(pgtest.ShopClone(t, shop.Small), indexes.ProductSalesIndex))
}

func TestExercise04(t *testing.T) {
	require.NoError(t, checkExercise04(pgtest.Shop(t, shop.Small), export.ExportOrderItemsCSV))
}

func TestExercise05(t *testing.T) {
	require.NoError(t, checkExercise05(nestedloops.CommonCustomers))
}
