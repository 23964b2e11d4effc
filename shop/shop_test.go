package shop

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var tiny = Scale{TopOrders: 100}

// checksum hashes every generated row of every table.
func checksum(t *testing.T, s Scale, seed uint64) string {
	t.Helper()
	hash := sha256.New()
	for _, table := range tables {
		next := table.rows(s, seed)
		for {
			row, err := next()
			require.NoError(t, err)
			if row == nil {
				break
			}
			fmt.Fprintf(hash, "%s %v\n", table.name, row)
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
		4: "5c57990e7866b3d0a6b4a952284dd0659754c7ea9ea40e0fa8a7c89365087616", // products have stock
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
		perUser[row[1].(int64)]++
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
		createdAt := row[3].(time.Time)
		require.False(t, createdAt.Before(last), "order %d placed before the one before it", row[0])
		last = createdAt
	}
}
