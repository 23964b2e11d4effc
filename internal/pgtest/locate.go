package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"works-vs-scales/internal/workshopenv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
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

// startFunc starts the PostgreSQL container called name from image, or joins
// it when another test binary started it already; stop is non-nil whenever
// something may need cleaning up, even when err is not.
type startFunc func(ctx context.Context, image, name string) (url string, stop func() error, err error)

// locate finds PostgreSQL the documented way: the URL in WORKSHOP_DATABASE_URL,
// else a container, else an error that says how to get one. The container is
// the go test run's, named after its session (see [containerName]): every test
// binary of the run, one a package, shares it.
func locate(ctx context.Context, getenv func(string) string, start startFunc, session string) (server, error) {
	if url := getenv(workshopenv.DatabaseURL); url != "" {
		return server{url: url, origin: workshopenv.DatabaseURL}, nil
	}
	image := getenv(workshopenv.PostgresImage)
	if image == "" {
		image = DefaultImage
	}
	name := containerName(session, image)
	url, stop, err := start(ctx, image, name)
	if err != nil {
		if stop != nil {
			err = errors.Join(err, stop())
		}
		return server{}, fmt.Errorf("%w: %s is not set and no container could be started (%v)\n\n%s",
			ErrNoDatabase, workshopenv.DatabaseURL, err, howToGetOne)
	}
	return server{url: url, origin: "container " + image, stop: stop}, nil
}

// containerName names the PostgreSQL container of one go test run: go test
// ./... runs a test binary a package, several at once, and each of them finds
// the one container by this name, started by whichever came first. The
// session is testcontainers-go's (a hash of the go command's process id and
// start time), the same for every binary of one go test and another for the
// next; the image is in the name too, so WORKSHOP_POSTGRES_IMAGE never gets a
// container of another.
func containerName(session, image string) string {
	sum := sha256.Sum256([]byte(session + "\x00" + image))
	return "wvs-postgres-" + hex.EncodeToString(sum[:8])
}

// ErrNoDatabase is returned when neither a URL nor Docker gives a PostgreSQL.
var ErrNoDatabase = errors.New("no PostgreSQL available")

const howToGetOne = `Give the workshop a PostgreSQL (15 or newer) in one of three ways:

  1. Point it at a server you have (it creates and drops its own databases there):
       export WORKSHOP_DATABASE_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'

  2. Start Docker (or Podman with its Docker socket) and run the tests again:
     the harness starts a ` + DefaultImage + ` container by itself. No registry
     to pull from? bash scripts/images builds stand-ins from Debian's packages;
     then export WORKSHOP_POSTGRES_IMAGE=works-vs-scales/postgres:15 (and the
     WORKSHOP_REDIS_IMAGE, WORKSHOP_PGBOUNCER_IMAGE it prints) and
     TESTCONTAINERS_RYUK_DISABLED=true: testcontainers' reaper is an image too,
     and without a registry it cannot be had.

  3. Start the workshop's own database and export its URL:
       docker compose up -d
       export WORKSHOP_DATABASE_URL='postgres://postgres:workshop@127.0.0.1:5432/postgres?sslmode=disable'`

// startContainer runs PostgreSQL in the container called name with
// testcontainers-go, with pg_stat_statements loaded (lesson 15) and
// replication allowed from other containers (lesson 18's replica), or joins it
// if another test binary of the run started it: testcontainers' reuse by name
// waits for one being created by another binary.
//
// With the reaper (Ryuk), no binary stops it, since others may still use it:
// the session's reaper, to which every binary holds a connection, removes it
// once the last of them has exited. Without it (TESTCONTAINERS_RYUK_DISABLED=true,
// where its image cannot be had) the binaries count themselves: each holds a
// shared lock on a file named after the container while it runs, and the one
// that ends last, finding the lock its alone, removes the container (see
// [containerUsers]).
func startContainer(ctx context.Context, image, name string) (string, func() error, error) {
	var users *containerUsers
	if ryukDisabled() {
		var err error
		if users, err = joinContainerUsers(name); err != nil {
			return "", nil, fmt.Errorf("container %s: %w", name, err)
		}
	}
	ctr, err := postgres.Run(ctx, image,
		// postgres.BasicWaitStrategies, with room for a busy machine's initdb.
		testcontainers.WithWaitStrategyAndDeadline(containerReadyTimeout,
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2).WithStartupTimeout(containerReadyTimeout),
			wait.ForListeningPort("5432/tcp").WithStartupTimeout(containerReadyTimeout)),
		testcontainers.WithEnv(map[string]string{"POSTGRES_INITDB_ARGS": "--no-sync"}), // a test server: fsync is off too
		testcontainers.WithCmdArgs("-c", "shared_preload_libraries=pg_stat_statements"),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader:            strings.NewReader(replicationScript),
			ContainerFilePath: "/docker-entrypoint-initdb.d/wvs-replication.sh",
			FileMode:          0o755,
		}),
		testcontainers.WithLabels(map[string]string{PartLabel: "postgres"}),
		testcontainers.WithReuseByName(name))
	stop := func() error {
		if users == nil {
			return nil // the reaper's
		}
		return users.leave(func() error { return removeContainer(name) })
	}
	if err != nil {
		return "", stop, fmt.Errorf("start container %s (%s): %w (%s; then set %s)", name, image, err, howToBuildImages, workshopenv.PostgresImage)
	}
	url, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return "", stop, fmt.Errorf("connection string of container %s: %w", name, err)
	}
	ip, err := ctr.ContainerIP(ctx)
	if err != nil {
		return "", stop, fmt.Errorf("address of container %s on Docker's network: %w", name, err)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "", stop, fmt.Errorf("connection string of container %s: %w", name, err)
	}
	inspect, err := ctr.Inspect(ctx)
	if err != nil {
		return "", stop, fmt.Errorf("inspect container %s: %w", name, err)
	}
	var gateway string // this machine, as the container's network reaches it
	for _, n := range inspect.NetworkSettings.Networks {
		if n.Gateway.IsValid() {
			gateway = n.Gateway.String()
		}
	}
	postgresContainer.Store(&containerInfo{
		image: image, ip: ip, user: cfg.User, password: cfg.Password,
		addr: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), gateway: gateway,
	})
	return url, stop, nil
}

// removeContainer removes the container called name, if it exists, however
// far its start went: a binary that failed to join it has no handle on it.
func removeContainer(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	defer docker.Close()
	_, err = docker.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	return nil
}

// containerReadyTimeout bounds the start of a container: an initdb takes a
// second or two on an idle laptop, and more than a minute on a machine shared
// by a room's builds (each wait strategy has a deadline of its own, 60 s
// unless told).
const containerReadyTimeout = 3 * time.Minute

// ryukDisabled reports whether testcontainers' reaper is turned off, as its
// configuration says (the environment, or ~/.testcontainers.properties).
func ryukDisabled() bool { return testcontainers.ReadConfig().Config.RyukDisabled }
