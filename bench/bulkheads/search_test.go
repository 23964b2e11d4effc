package bulkheads

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	naive "works-vs-scales/naive/bulkheads"
	scalable "works-vs-scales/scalable/bulkheads"
	"works-vs-scales/shop"
)

// TestSearchProductsFindsTheTermAsTyped: the user's term is text to find,
// not a LIKE pattern. %, _ and \ find the one product whose name holds them
// (the generator seeds it), in both versions; a huge term is an ordinary
// term, and an error quotes only the start of it.
func TestSearchProductsFindsTheTermAsTyped(t *testing.T) {
	db := pgtest.Shop(t, shop.Small)
	ctx := context.Background()
	works, err := naive.New(db)
	require.NoError(t, err)
	// Deadlines long enough never to fire on a busy machine: this test is
	// about the answer, lesson 11's are about the deadlines.
	scales, err := scalable.New(bulkheadPools(t, db), scalable.Timeouts{Orders: time.Minute, Search: time.Minute, Payments: time.Minute})
	require.NoError(t, err)
	impls := []struct {
		name   string
		search func(context.Context, string) ([]shop.Product, error)
	}{
		{"naive", works.SearchProducts},
		{"scalable", scales.SearchProducts},
	}
	for _, impl := range impls {
		for _, term := range []string{"%", "_", `\`, "100%", "wool_felt", `C:\kitchen`, "%wool"} {
			got, err := impl.search(ctx, term)
			require.NoError(t, err, "%s %q", impl.name, term)
			ids := make([]int64, len(got))
			for i, p := range got {
				ids[i] = p.ID
				assert.Contains(t, strings.ToLower(p.Name), strings.ToLower(term), "%s %q", impl.name, term)
			}
			want := []int64{shop.SearchEdgeProductID}
			if term == "%wool" {
				want = []int64{}
			}
			assert.Equal(t, want, ids, "%s %q", impl.name, term)
		}

		// A megabyte-long term would cost the database seconds per search:
		// it is refused, and the error quotes only its start.
		_, err := impl.search(ctx, strings.Repeat("%", 1<<20))
		require.ErrorIs(t, err, shop.ErrSearchTermTooLong, impl.name)
		assert.Less(t, len(err.Error()), 200, "%s: the error quotes a bounded part of the term", impl.name)
		got, err := impl.search(ctx, strings.Repeat("%", shop.MaxSearchTermSize))
		require.NoError(t, err, impl.name)
		assert.Empty(t, got, impl.name)

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err = impl.search(cancelled, strings.Repeat("x", shop.MaxSearchTermSize))
		require.Error(t, err, impl.name)
		assert.Less(t, len(err.Error()), 200, "%s: the error quotes a bounded part of the term", impl.name)
	}
}
