package workshopenv

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRTT(t *testing.T) {
	for setting, want := range map[string]string{"": "0s", "1ms": "1ms", "500us": "500µs"} {
		rtt, err := ParseRTT(setting)
		require.NoError(t, err, setting)
		assert.Equal(t, want, rtt.String())
	}
	for _, bad := range []string{"1", "fast", "-1ms"} {
		_, err := ParseRTT(bad)
		assert.ErrorContains(t, err, RTT, bad)
	}
}

// TestRedactedHidesEveryPassword: a URL keeps all but its password; a
// setting that is not a URL is not shown at all, since a key=value
// connection string may carry its password anywhere.
func TestRedactedHidesEveryPassword(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://alice:s3cret@db:5432/shop?sslmode=disable": "postgres://alice:xxxxx@db:5432/shop?sslmode=disable",
		"postgres://alice@db/shop":                             "postgres://alice@db/shop",
		"redis://:s3cret@127.0.0.1:6379/0":                     "redis://:xxxxx@127.0.0.1:6379/0",
	} {
		assert.Equal(t, want, Redacted(raw))
	}
	for _, raw := range []string{"host=db user=alice password=s3cret", "alice:s3cret@db", "postgres:s3cret", "%zz://a:s3cret@b"} {
		got := Redacted(raw)
		assert.NotContains(t, got, "s3cret", raw)
		assert.Contains(t, got, "not a URL", raw)
	}
}

func TestConnBudget(t *testing.T) {
	t.Setenv(MaxConns, "")
	_, ok, err := ConnBudget()
	require.NoError(t, err)
	assert.False(t, ok, "unset: no cap")
	t.Setenv(MaxConns, "9")
	n, ok, err := ConnBudget()
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 9, n)
	assert.Equal(t, 5, DatabaseConns(n), "the harness keeps its part of the budget")
	for _, bad := range []string{"5", "1", "0", "-3", "many", "9.5"} {
		t.Setenv(MaxConns, bad)
		_, _, err := ConnBudget()
		assert.ErrorContains(t, err, MaxConns, bad)
	}
}
