//go:build exercise

package bench

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	coupon "works-vs-scales/exercises/races"
)

// The trainee's check of lesson 12: go test -tags exercise -run Exercise12 ./bench

func TestExercise12(t *testing.T) {
	require.NoError(t, checkExercise12(t, coupon.CreateCouponTable, func(db *pgxpool.Pool) (couponRedeemer, error) { return coupon.NewCoupons(db) }))
}
