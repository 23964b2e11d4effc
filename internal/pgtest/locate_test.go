package pgtest

import (
	"context"
	"errors"
	"testing"

	"works-vs-scales/internal/workshopenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env is a fake environment for locate.
func env(vars map[string]string) func(string) string {
	return func(key string) string { return vars[key] }
}

// starter is a fake container start that records whether it ran.
type starter struct {
	image   string
	err     error
	stopped bool
}

func (s *starter) start(_ context.Context, image string) (string, func() error, error) {
	s.image = image
	stop := func() error { s.stopped = true; return nil }
	if s.err != nil {
		return "", stop, s.err
	}
	return "postgres://test@container:5432/test", stop, nil
}

func TestLocateUsesTheURLAsIs(t *testing.T) {
	var containers starter
	const url = "postgres://me@db.example:5432/shop"
	srv, err := locate(context.Background(), env(map[string]string{workshopenv.DatabaseURL: url}), containers.start)
	require.NoError(t, err)
	assert.Equal(t, url, srv.url)
	assert.Nil(t, srv.stop, "nothing to stop: the harness started nothing")
	assert.Empty(t, containers.image, "no container started when a URL is set")
}

func TestLocateStartsAContainerWithoutURL(t *testing.T) {
	var containers starter
	srv, err := locate(context.Background(), env(nil), containers.start)
	require.NoError(t, err)
	assert.Equal(t, DefaultImage, containers.image)
	assert.Equal(t, "postgres://test@container:5432/test", srv.url)
	require.NotNil(t, srv.stop)
	require.NoError(t, srv.stop())
	assert.True(t, containers.stopped)
}

func TestLocateImageCanBeOverridden(t *testing.T) {
	var containers starter
	_, err := locate(context.Background(), env(map[string]string{workshopenv.PostgresImage: "postgres:17"}), containers.start)
	require.NoError(t, err)
	assert.Equal(t, "postgres:17", containers.image)
}

func TestLocateFailsWithTheWayOut(t *testing.T) {
	containers := starter{err: errors.New("rootless Docker not found")}
	_, err := locate(context.Background(), env(nil), containers.start)
	require.ErrorIs(t, err, ErrNoDatabase)
	for _, want := range []string{
		"rootless Docker not found",     // why the container path failed
		"export WORKSHOP_DATABASE_URL=", // way 1
		"Start Docker",                  // way 2
		"docker compose up -d",          // way 3
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.True(t, containers.stopped, "a half-started container is cleaned up")
}
