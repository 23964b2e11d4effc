//go:build exercise

package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

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
