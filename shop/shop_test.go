package shop

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var tiny = Scale{TopOrders: 100}

// checksum hashes every generated row of every table, the tables in the
// order of schema.sql (not of tables, which is the load's order: a load that
// starts its copies in another order makes the same rows).
func checksum(t *testing.T, s Scale, seed uint64) string {
	t.Helper()
	hash := sha256.New()
	for _, name := range []string{"users", "products", "orders", "order_items", "posts", "comments"} {
		i := slices.IndexFunc(tables, func(t table) bool { return t.name == name })
		require.GreaterOrEqual(t, i, 0, "table %s", name)
		table := tables[i]
		next := table.rows(s, seed)
		for {
			row, err := next()
			require.NoError(t, err)
			if row == nil {
				break
			}
			fmt.Fprintf(hash, "%s %v\n", table.name, anys(row))
		}
	}
	return hex.EncodeToString(hash.Sum(nil))
}

func TestGeneratorIsDeterministic(t *testing.T) {
	assert.Equal(t, checksum(t, tiny, 1), checksum(t, tiny, 1), "same seed, same rows")
	assert.NotEqual(t, checksum(t, tiny, 1), checksum(t, tiny, 2), "another seed, other rows")
}

// The templates the harness reuses are named by GeneratorVersion: a generator
// that makes other rows under the same version would be answered with stale
// data. When this fails, bump GeneratorVersion and record the new checksum.
func TestGeneratorVersionPinsItsRows(t *testing.T) {
	rowsOfVersion := map[int]string{
		2: "376907e72de6ad6b1c15996c3cb65a872e2611b006a35f8780e6edc0e45a8565",
		3: "376907e72de6ad6b1c15996c3cb65a872e2611b006a35f8780e6edc0e45a8565", // the same rows, vacuumed after the load
		4: "6d3eded15ccf6b9c650087e42412c2ffede5b1d1ef588ad8666ac8497cdb131b", // the edge cases seeded
		5: "be77ee4acf21eb1bafe90fa5874988921133d1880cdfec635549d262a9be468d", // volume grows from the first day, not from zero
		6: "00f7637807fd687352311d581c46ee9217444dd4a5932d62825c0a2e7a5bb68f", // the edge cases, and products with stock (lesson 12)
		7: "db6d7507f66f4079db6e4ff3bd5ce6856d936042ef779701ea1af62aa095e628", // users.phone, NULL for every fifth user
		8: "db6d7507f66f4079db6e4ff3bd5ce6856d936042ef779701ea1af62aa095e628", // the same rows, copied concurrently and frozen
		9: "db6d7507f66f4079db6e4ff3bd5ce6856d936042ef779701ea1af62aa095e628", // the same rows, copied in binary, each table's keys built once it is in
	}
	assert.Equal(t, rowsOfVersion[GeneratorVersion], checksum(t, tiny, 1),
		"the generator's rows changed: bump GeneratorVersion and record this checksum")
}

func TestScaleHasUsersAtEverySize(t *testing.T) {
	for n := 1; n <= Small.TopOrders; n *= 10 {
		id, ok := Small.UserWithOrders(n)
		require.True(t, ok, n)
		assert.Equal(t, n, Small.OrdersOf(id))
	}
	id, ok := Small.UserWithOrders(0)
	require.True(t, ok)
	assert.Zero(t, Small.OrdersOf(id))
	assert.LessOrEqual(t, id, int64(Small.Users()))
	_, ok = Small.UserWithOrders(3) // 10,000 is not a multiple of 3
	assert.False(t, ok)
}

func TestOrdersFollowThePowerLaw(t *testing.T) {
	perUser := make(map[int64]int)
	next := orderRows(tiny, 1)
	total := 0
	for row, _ := next(); row != nil; row, _ = next() {
		perUser[row[1].Int64()]++
		total++
	}
	assert.Equal(t, tiny.Orders(), total)
	for id := int64(1); id <= int64(tiny.Users()); id++ {
		assert.Equal(t, tiny.OrdersOf(id), perUser[id], "orders of user %d", id)
	}
	few := 0
	for _, n := range perUser {
		if n <= 2 {
			few++
		}
	}
	assert.Greater(t, few, len(perUser)/2, "most users have one or two orders")
}

func TestOrdersAreInTimeOrder(t *testing.T) {
	next := orderRows(tiny, 1)
	var last time.Time
	for row, _ := next(); row != nil; row, _ = next() {
		createdAt := row[3].Time()
		require.False(t, createdAt.Before(last), "order %d placed before the one before it", row[0].Int64())
		last = createdAt
	}
}

// TestDataHoldsTheEdgeCases: the rows a real shop has and a tidy generator
// forgets, seeded where lesson 0 says they are, at every scale the lessons
// use.
func TestDataHoldsTheEdgeCases(t *testing.T) {
	for _, s := range []Scale{tiny, {TopOrders: 1000}, Small} {
		t.Run(s.String(), func(t *testing.T) {
			orders := generated(t, orderRows(s, 1))
			items := generated(t, orderItemRows(s, 1))
			byID := make(map[int64][]any, len(orders))
			ofUser := make(map[int64][][]any)
			for _, o := range orders {
				byID[o[0].(int64)] = o
				ofUser[o[1].(int64)] = append(ofUser[o[1].(int64)], o)
			}
			itemsOf := make(map[int64]int, len(orders))
			prices := productPrices(s, 1)
			repriced := 0
			for _, it := range items {
				itemsOf[it[0].(int64)]++
				if it[4].(int64) != prices[it[2].(int64)] {
					repriced++
				}
			}
			assert.Positive(t, repriced, "some items were paid at another price than the product's today")

			for _, userID := range s.EdgeCaseUsers() {
				mine := ofUser[userID]
				require.GreaterOrEqual(t, len(mine), 10, "user %d", userID)
				itemless, tied := 0, 0
				for i, o := range mine {
					if itemsOf[o[0].(int64)] == 0 {
						itemless++
						assert.Positive(t, i, "user %d: not their first order", userID)
						assert.Less(t, i, len(mine)-1, "user %d: not their last order", userID)
					}
					if i > 0 && o[3].(time.Time).Equal(mine[i-1][3].(time.Time)) {
						tied++
					}
				}
				assert.Equal(t, 1, itemless, "user %d has one order without items", userID)
				assert.Equal(t, 1, tied, "user %d placed two orders in the same microsecond", userID)
			}

			perYear := make(map[int]int)
			pending := 0
			for _, o := range orders {
				perYear[o[3].(time.Time).Year()]++
				if o[2] == "pending" {
					pending++
				}
			}
			for year := 2022; year <= 2025; year++ {
				assert.Greater(t, perYear[year], perYear[year-1], "more orders in %d than in %d", year, year-1)
			}
			assert.GreaterOrEqual(t, pending, 50, "the warehouse's 50 oldest pending orders exist at every scale")

			names := make(map[string]bool)
			withoutPhone := 0
			for _, u := range generated(t, userRows(s, 1)) {
				names[u[1].(string)] = true
				require.Len(t, u, len(tables[0].columns), "user %d: a value for every column", u[0])
				id, phone := u[0].(int64), u[3]
				if id%NoPhoneEvery == 0 {
					assert.Nil(t, phone, "user %d gave no phone number: NULL", id)
					withoutPhone++
				} else {
					assert.IsType(t, "", phone, "user %d has a phone number", id)
				}
			}
			assert.Equal(t, s.Users()/NoPhoneEvery, withoutPhone, "users without a phone number")
			for _, id := range s.EdgeCaseUsers() {
				if id != 1 {
					assert.Zero(t, id%NoPhoneEvery, "edge-case user %d has no phone number", id)
				}
			}
			if s.Users() > 1000 {
				assert.Greater(t, len(names), 1000, "many more than 256 distinct names")
			}

			products := generated(t, productRows(s, 1))
			assert.Equal(t, SearchEdgeProductName, products[SearchEdgeProductID-1][1], "the product whose name holds %, _ and \\")
		})
	}
}

// TestFeedHoldsTheEdgeCases: among the newest 200 posts (what the feed's
// exercise pages through), two share a created_at and one is older than the
// post before it; among the newest 50 (lesson 1's feed), some authors have no
// phone number.
func TestFeedHoldsTheEdgeCases(t *testing.T) {
	for _, s := range []Scale{tiny, Small} {
		posts := generated(t, postRows(s, 1))
		newest := posts[max(0, len(posts)-200):]
		same, outOfOrder := 0, 0
		for i := 1; i < len(newest); i++ {
			prev, cur := newest[i-1][3].(time.Time), newest[i][3].(time.Time)
			if cur.Equal(prev) {
				same++
			}
			if cur.Before(prev) {
				outOfOrder++
			}
		}
		assert.Positive(t, same, "%v: two posts share a created_at", s)
		assert.Positive(t, outOfOrder, "%v: a post is older than the one before it by id", s)
		withoutPhone := 0
		for _, p := range posts[max(0, len(posts)-50):] {
			if p[1].(int64)%NoPhoneEvery == 0 {
				withoutPhone++
			}
		}
		assert.Positive(t, withoutPhone, "%v: some authors of the newest 50 posts have no phone number", s)
		assert.Less(t, withoutPhone, 50, "%v: some have one", s)
	}
}

// generated returns every row next makes.
func generated(t *testing.T, next func() ([]value, error)) [][]any {
	t.Helper()
	var rows [][]any
	for {
		row, err := next()
		require.NoError(t, err)
		if row == nil {
			return rows
		}
		rows = append(rows, anys(row))
	}
}

// anys is row as the Go values it stands for (see value.any), in a slice of
// its own.
func anys(row []value) []any {
	out := make([]any, len(row))
	for i, v := range row {
		out[i] = v.Any()
	}
	return out
}

// BenchmarkGenerate is the generator's share of seeding the large shop: every
// row of every table, made and dropped (COPY and the indexes are the rest).
func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		rows := 0
		for _, table := range tables {
			next := table.rows(Large, 1)
			for row, err := next(); row != nil || err != nil; row, err = next() {
				if err != nil {
					b.Fatal(err)
				}
				rows++
			}
		}
		b.ReportMetric(float64(rows), "rows/op")
	}
}

func TestQuoteCapsWhatItEchoes(t *testing.T) {
	assert.Equal(t, `"short"`, Quote("short"))
	huge := strings.Repeat("é", 1<<20)
	got := Quote(huge)
	assert.Less(t, len(got), 2*QuoteMax)
	assert.Contains(t, got, "(2097152 bytes)")
	assert.True(t, utf8.ValidString(got), "never cuts a character in two")
}

func TestPageOffsetRefusesWhatCannotBeAPage(t *testing.T) {
	offset, err := PageOffset(3, 10)
	require.NoError(t, err)
	assert.Equal(t, int64(20), offset)
	for _, c := range []struct{ page, size int }{
		{0, 10}, {-1, 10}, {1, 0}, {1, -1}, {1, MaxPageSize + 1}, {1, math.MaxInt},
		{1<<62 + 1, 10}, {math.MaxInt / 2, 3},
	} {
		_, err := PageOffset(c.page, c.size)
		assert.ErrorIs(t, err, ErrInvalidPage, "page %d of %d", c.page, c.size)
	}
}

func TestEscapeLike(t *testing.T) {
	assert.Equal(t, `100\% wool\_felt C:\\kitchen`, EscapeLike(`100% wool_felt C:\kitchen`))
	assert.Equal(t, "plain", EscapeLike("plain"))
}
