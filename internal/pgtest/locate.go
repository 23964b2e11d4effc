package pgtest

import (
	"context"
	"errors"
	"fmt"

	"works-vs-scales/internal/workshopenv"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
)

// DefaultImage is the PostgreSQL the container path runs: the same major
// version as docker-compose.yml and the workshop machines.
const DefaultImage = "postgres:15-alpine"

// server is a running PostgreSQL the harness may create databases on.
type server struct {
	url    string       // connects to the maintenance database
	origin string       // where it came from, for the results header
	stop   func() error // terminates what the harness started; nil if nothing
}

// startFunc starts a PostgreSQL container from image; stop is non-nil whenever
// something may need cleaning up, even when err is not.
type startFunc func(ctx context.Context, image string) (url string, stop func() error, err error)

// locate finds PostgreSQL the documented way: the URL in WORKSHOP_DATABASE_URL,
// else a container, else an error that says how to get one.
func locate(ctx context.Context, getenv func(string) string, start startFunc) (server, error) {
	if url := getenv(workshopenv.DatabaseURL); url != "" {
		return server{url: url, origin: workshopenv.DatabaseURL}, nil
	}
	image := getenv(workshopenv.PostgresImage)
	if image == "" {
		image = DefaultImage
	}
	url, stop, err := start(ctx, image)
	if err != nil {
		if stop != nil {
			err = errors.Join(err, stop())
		}
		return server{}, fmt.Errorf("%w: %s is not set and no container could be started (%v)\n\n%s",
			ErrNoDatabase, workshopenv.DatabaseURL, err, howToGetOne)
	}
	return server{url: url, origin: "container " + image, stop: stop}, nil
}

// ErrNoDatabase is returned when neither a URL nor Docker gives a PostgreSQL.
var ErrNoDatabase = errors.New("no PostgreSQL available")

const howToGetOne = `Give the workshop a PostgreSQL (15 or newer) in one of three ways:

  1. Point it at a server you have (it creates and drops its own databases there):
       export WORKSHOP_DATABASE_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'

  2. Start Docker (or Podman with its Docker socket) and run the tests again:
     the harness starts a ` + DefaultImage + ` container by itself.

  3. Start the workshop's own database and export its URL:
       docker compose up -d
       export WORKSHOP_DATABASE_URL='postgres://postgres:workshop@127.0.0.1:5432/postgres?sslmode=disable'`

// startContainer runs PostgreSQL in a container with testcontainers-go, with
// pg_stat_statements loaded (lesson 15).
func startContainer(ctx context.Context, image string) (string, func() error, error) {
	ctr, err := postgres.Run(ctx, image, postgres.BasicWaitStrategies(),
		testcontainers.WithCmdArgs("-c", "shared_preload_libraries=pg_stat_statements"))
	stop := func() error { return testcontainers.TerminateContainer(ctr) }
	if err != nil {
		return "", stop, fmt.Errorf("start container %s: %w", image, err)
	}
	url, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return "", stop, fmt.Errorf("connection string of container %s: %w", image, err)
	}
	return url, stop, nil
}
