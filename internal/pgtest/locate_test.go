package pgtest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/workshopenv"
)

// env is a fake environment for locate.
func env(vars map[string]string) func(string) string {
	return func(key string) string { return vars[key] }
}

// docker is a fake Docker for locate: it starts a container by name the
// first time, and reuses it when another test binary asks for the same name,
// as testcontainers' reuse by name does.
type docker struct {
	mu      sync.Mutex
	err     error
	started []string       // the names of the containers it started, in order
	asked   map[string]int // how many binaries asked for each name
	images  map[string]string
	stopped bool
}

func (d *docker) start(_ context.Context, image, name string) (string, func() error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	stop := func() error { d.stopped = true; return nil }
	if d.err != nil {
		return "", stop, d.err
	}
	if d.asked == nil {
		d.asked, d.images = map[string]int{}, map[string]string{}
	}
	if d.asked[name] == 0 {
		d.started = append(d.started, name)
		d.images[name] = image
	}
	d.asked[name]++
	return fmt.Sprintf("postgres://postgres@%s:5432/postgres", name), nil, nil
}

func TestLocateUsesTheURLAsIs(t *testing.T) {
	var containers docker
	const url = "postgres://me@db.example:5432/shop"
	srv, err := locate(context.Background(), env(map[string]string{workshopenv.DatabaseURL: url}), containers.start, "session")
	require.NoError(t, err)
	assert.Equal(t, url, srv.url)
	assert.Nil(t, srv.stop, "nothing to stop: the harness started nothing")
	assert.Empty(t, containers.started, "no container started when a URL is set")
}

func TestLocateStartsAContainerWithoutURL(t *testing.T) {
	var containers docker
	srv, err := locate(context.Background(), env(nil), containers.start, "session")
	require.NoError(t, err)
	require.Len(t, containers.started, 1)
	assert.Equal(t, DefaultImage, containers.images[containers.started[0]])
	assert.Equal(t, "postgres://postgres@"+containerName("session", DefaultImage)+":5432/postgres", srv.url)
	assert.Equal(t, "container "+DefaultImage, srv.origin)
}

// TestTheTestBinariesOfOneRunShareOneContainer: go test ./... runs a test
// binary a package, several at once; all of one run find the same container
// by name, and none stops it when it ends (the run's reaper does, after the
// last). The next go test run has a container of its own, and so does
// another image.
func TestTheTestBinariesOfOneRunShareOneContainer(t *testing.T) {
	var containers docker
	var wg sync.WaitGroup
	urls := make([]string, 8)
	for i := range urls { // eight packages' binaries, at once
		wg.Go(func() {
			srv, err := locate(context.Background(), env(nil), containers.start, "run-1")
			assert.NoError(t, err)
			assert.Nil(t, srv.stop, "a binary leaves the run's container to the others")
			urls[i] = srv.url
		})
	}
	wg.Wait()
	require.Len(t, containers.started, 1, "one container for the run")
	assert.Equal(t, 8, containers.asked[containers.started[0]], "every binary asked for it by its name")
	for _, url := range urls {
		assert.Equal(t, urls[0], url)
	}

	_, err := locate(context.Background(), env(nil), containers.start, "run-2")
	require.NoError(t, err)
	_, err = locate(context.Background(), env(map[string]string{workshopenv.PostgresImage: "postgres:17"}), containers.start, "run-2")
	require.NoError(t, err)
	require.Len(t, containers.started, 3, "the next run, and another image, get containers of their own")
	assert.Equal(t, "postgres:17", containers.images[containers.started[2]])
}

func TestContainerNamesAreDockerNames(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`) // Docker's, and short
	for _, c := range []struct{ session, image string }{
		{"", ""}, {"0c5b9e1f", DefaultImage}, {"0c5b9e1f", "registry.example:5000/team/postgres:17@sha256:abc"},
		{"a session with spaces/and slashes", "x"},
	} {
		name := containerName(c.session, c.image)
		assert.Regexp(t, valid, name)
		assert.Equal(t, name, containerName(c.session, c.image), "the same for every binary of the run")
	}
	assert.NotEqual(t, containerName("s", "a:1"), containerName("s", "a:2"))
	assert.NotEqual(t, containerName("s1", "a"), containerName("s2", "a"))
}

func TestLocateImageCanBeOverridden(t *testing.T) {
	var containers docker
	_, err := locate(context.Background(), env(map[string]string{workshopenv.PostgresImage: "postgres:17"}), containers.start, "session")
	require.NoError(t, err)
	assert.Equal(t, "postgres:17", containers.images[containers.started[0]])
}

func TestLocateFailsWithTheWayOut(t *testing.T) {
	containers := docker{err: errors.New("rootless Docker not found")}
	_, err := locate(context.Background(), env(nil), containers.start, "session")
	require.ErrorIs(t, err, ErrNoDatabase)
	for _, want := range []string{
		"rootless Docker not found",     // why the container path failed
		"export WORKSHOP_DATABASE_URL=", // way 1
		"Start Docker",                  // way 2
		"bash scripts/images",           // way 2 without a registry
		"WORKSHOP_POSTGRES_IMAGE=works-vs-scales/postgres:15",
		"TESTCONTAINERS_RYUK_DISABLED=true", // the reaper's image cannot be pulled either
		"docker compose up -d",              // way 3
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.True(t, containers.stopped, "a half-started container is cleaned up")
}
