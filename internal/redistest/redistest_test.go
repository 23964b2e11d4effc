package redistest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocateUsesTheURLAsIs(t *testing.T) {
	started := false
	start := func(context.Context) (string, func() error, error) { started = true; return "", nil, nil }
	url, stop, err := locate(context.Background(), func(key string) string {
		return map[string]string{EnvRedisURL: "redis://cache:6379/2"}[key]
	}, start)
	require.NoError(t, err)
	assert.Equal(t, "redis://cache:6379/2", url)
	assert.Nil(t, stop)
	assert.False(t, started)
}

func TestLocateStartsAContainerWithoutURL(t *testing.T) {
	start := func(context.Context) (string, func() error, error) {
		return "redis://container:6379", func() error { return nil }, nil
	}
	url, stop, err := locate(context.Background(), func(string) string { return "" }, start)
	require.NoError(t, err)
	assert.Equal(t, "redis://container:6379", url)
	assert.NotNil(t, stop)
}

func TestLocateFailsWithTheWayOut(t *testing.T) {
	stopped := false
	start := func(context.Context) (string, func() error, error) {
		return "", func() error { stopped = true; return nil }, errors.New("rootless Docker not found")
	}
	_, _, err := locate(context.Background(), func(string) string { return "" }, start)
	require.ErrorIs(t, err, ErrNoRedis)
	for _, want := range []string{"rootless Docker not found", "export WORKSHOP_REDIS_URL=", "docker compose up -d"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.True(t, stopped)
}
