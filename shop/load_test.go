package shop

import (
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgcopy"
)

func TestBinaryRowsReadEveryGeneratedRow(t *testing.T) {
	for _, table := range tables {
		want := []byte(pgcopy.Header)
		next := table.rows(tiny, 1)
		rows := 0
		for row, err := next(); row != nil; row, err = next() {
			require.NoError(t, err)
			want = pgcopy.AppendRow(want, row)
			rows++
		}
		want = append(want, pgcopy.Trailer...)
		got, err := io.ReadAll(pgcopy.NewRows(table.rows(tiny, 1)))
		require.NoError(t, err)
		assert.Equal(t, want, got, table.name)
		assert.Positive(t, rows, table.name)
	}
}

func TestIndexStepsKeepEveryStatementOnce(t *testing.T) {
	steps := indexSteps(Indexes)
	all := slices.Clone(steps.rest)
	for _, tb := range tables {
		for _, stmt := range steps.own[tb.name] {
			assert.Regexp(t, `^(ALTER TABLE `+tb.name+` |CREATE INDEX \w+ ON `+tb.name+` |SELECT setval)`, stmt, "%s's own", tb.name)
			assert.NotContains(t, stmt, "FOREIGN KEY", "%s's own joins no other table", tb.name)
		}
		all = append(all, steps.own[tb.name]...)
		for _, fk := range steps.foreign[tb.name] {
			assert.Equal(t, tb.name, fk.table)
			assert.Regexp(t, `^ALTER TABLE `+tb.name+` +ADD FOREIGN KEY \(`+fk.column+`\) +REFERENCES `+fk.references+` \(id\)$`, fk.stmt)
			all = append(all, fk.stmt)
		}
	}
	statements := regexp.MustCompile(`(?m)^(ALTER|CREATE|SELECT) `).FindAllString(Indexes, -1)
	assert.Len(t, all, len(statements), "every statement, once")
	assert.Len(t, steps.own, len(tables), "every copied table has keys")
	identity := steps.own["orders"]
	i := slices.IndexFunc(identity, func(s string) bool { return strings.Contains(s, "GENERATED") })
	require.GreaterOrEqual(t, i, 0, "orders' identity is orders' own")
	require.Greater(t, len(identity), i+1)
	assert.Contains(t, identity[i+1], "setval", "setval runs after the identity it sets")
	assert.Equal(t, []foreignKey{
		{"ALTER TABLE order_items ADD FOREIGN KEY (order_id)   REFERENCES orders (id)", "order_items", "order_id", "orders"},
		{"ALTER TABLE order_items ADD FOREIGN KEY (product_id) REFERENCES products (id)", "order_items", "product_id", "products"},
	}, steps.foreign["order_items"])
	assert.Equal(t, "ALTER TABLE order_items VALIDATE CONSTRAINT order_items_order_id_fkey", steps.foreign["order_items"][0].validate())
	for _, stmt := range steps.rest {
		assert.Regexp(t, `payment`, stmt, "the rest are the tables not copied")
	}
}
