package redistest

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/workshopenv"
)

// TestKeysAreUnderTheRunsPrefix: a caller's keys live under
// wvs:<WORKSHOP_DB_PREFIX>, so a CI job or a trainee sharing a Redis can
// count and delete its own keys without touching another prefix's.
func TestKeysAreUnderTheRunsPrefix(t *testing.T) {
	t.Setenv(workshopenv.DBPrefix, "wvs_keys_")
	client, prefix := Client(t)
	other := "wvs:wvs_keys_x_1:1:" // another prefix that starts with this one's letters
	require.True(t, strings.HasPrefix(prefix, "wvs:wvs_keys_"), prefix)
	ctx := context.Background()
	require.NoError(t, client.Set(ctx, prefix+"a", "1", 0).Err())
	require.NoError(t, client.Set(ctx, other+"a", "1", 0).Err())
	t.Cleanup(func() { client.Del(context.Background(), other+"a") })

	require.NoError(t, DeleteKeys(ctx, client, prefix))
	assert.Zero(t, client.Exists(ctx, prefix+"a").Val(), "its own key is deleted")
	assert.Equal(t, int64(1), client.Exists(ctx, other+"a").Val(), "another prefix's key is left alone")
}
