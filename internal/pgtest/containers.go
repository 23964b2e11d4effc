package pgtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"works-vs-scales/internal/workshopenv"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The container path's other parts: on a machine where the harness runs
// PostgreSQL as a container, what lessons 13 and 18 need runs as containers
// too, reaching it by its address on Docker's network, so that the path
// needs Docker and nothing else.

// DefaultPgBouncerImage is the PgBouncer the container path runs for lesson 13.
const DefaultPgBouncerImage = "edoburu/pgbouncer:latest"

// howToBuildImages is what a failure to start a container adds.
const howToBuildImages = "no registry to pull from? bash scripts/images builds stand-ins and says which WORKSHOP_*_IMAGE to export"

// postgresContainer is the run's PostgreSQL container, once this binary has
// started or joined it; nil on a server found by URL.
var postgresContainer atomic.Pointer[containerInfo]

// containerInfo is what a second container needs to reach the first.
type containerInfo struct {
	image    string // a replica runs the same
	ip       string // on Docker's network
	user     string
	password string
}

// replicationScript lets every address copy the server with pg_basebackup, as
// its superuser with its password: only other containers reach it.
const replicationScript = `#!/bin/sh
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
`

// pgBouncerImage returns WORKSHOP_PGBOUNCER_IMAGE or DefaultPgBouncerImage.
func pgBouncerImage() string {
	if image := os.Getenv(workshopenv.PgBouncerImage); image != "" {
		return image
	}
	return DefaultPgBouncerImage
}

// startPgBouncerContainer runs PgBouncer as a container in front of the
// database target names on the PostgreSQL container c, with the
// configuration a local PgBouncer would have, and returns a copy of target
// that connects through it and what removes it.
func startPgBouncerContainer(ctx context.Context, c *containerInfo, target *pgx.ConnConfig, cfg PgBouncerConfig) (*pgx.ConnConfig, func() error, error) {
	const port = 6432
	server := fmt.Sprintf("host=%s port=5432 dbname=%s", c.ip, target.Database)
	ini := pgBouncerINI(target, cfg, server, "0.0.0.0", port, "/etc/pgbouncer/userlist.txt")
	image := pgBouncerImage()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        image,
			ExposedPorts: []string{strconv.Itoa(port) + "/tcp"},
			Files: []testcontainers.ContainerFile{
				{Reader: strings.NewReader(ini), ContainerFilePath: "/etc/pgbouncer/pgbouncer.ini", FileMode: 0o644},
				{Reader: strings.NewReader(pgBouncerUserlist(target)), ContainerFilePath: "/etc/pgbouncer/userlist.txt", FileMode: 0o644},
			},
			WaitingFor: wait.ForListeningPort(strconv.Itoa(port) + "/tcp").WithStartupTimeout(containerReadyTimeout),
		},
		Started: true,
	})
	stop := func() error { return testcontainers.TerminateContainer(ctr) }
	if err != nil {
		return nil, stop, fmt.Errorf("start container %s: %w (%s; or set %s)", image, err, howToBuildImages, workshopenv.PgBouncerImage)
	}
	host, err := ctr.Host(ctx)
	if err != nil {
		return nil, stop, fmt.Errorf("the host of container %s: %w", image, err)
	}
	mapped, err := ctr.MappedPort(ctx, strconv.Itoa(port)+"/tcp")
	if err != nil {
		return nil, stop, fmt.Errorf("the port of container %s: %w", image, err)
	}
	through := target.Copy()
	through.Host, through.Port = host, mapped.Num()
	through.Fallbacks = nil
	through.TLSConfig = nil
	return through, stop, nil
}

// replicaDataDir is where a replica container keeps its copy.
const replicaDataDir = "/tmp/replica"

// startReplicaContainer copies the PostgreSQL container c with pg_basebackup
// -R into a second container of the same image, through the replication slot
// r.slot, and runs it as a hot standby; r.url connects to it and r.ctr is
// what StopReplica removes.
func startReplicaContainer(ctx context.Context, c *containerInfo, r *replicaServer) error {
	const script = `set -e
pg_basebackup --host "$PRIMARY" --port 5432 --username "$PGUSER" --pgdata "$DATA" \
	--write-recovery-conf --wal-method stream --create-slot --slot "$SLOT" \
	--checkpoint fast --no-sync --dbname "application_name=$TAG"
chmod 700 "$DATA"
exec postgres -D "$DATA" -c listen_addresses='*' -c hot_standby=on`
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        c.image,
			Entrypoint:   []string{"sh", "-c", script},
			ExposedPorts: []string{"5432/tcp"},
			Env: map[string]string{
				"PRIMARY": c.ip, "PGUSER": c.user, "PGPASSWORD": c.password,
				"DATA": replicaDataDir, "SLOT": r.slot, "TAG": r.tag,
			},
			ConfigModifier: func(cfg *container.Config) { cfg.User = "postgres" },
			WaitingFor: wait.ForAll(
				wait.ForLog("database system is ready to accept read-only connections").WithStartupTimeout(replicaContainerReady),
				wait.ForListeningPort("5432/tcp").WithStartupTimeout(replicaContainerReady),
			).WithDeadline(replicaContainerReady),
		},
		Started: true,
	})
	r.ctr = ctr
	if err != nil {
		return fmt.Errorf("start a replica container of %s: %w", c.image, err)
	}
	host, err := ctr.Host(ctx)
	if err != nil {
		return fmt.Errorf("the replica container's host: %w", err)
	}
	mapped, err := ctr.MappedPort(ctx, "5432/tcp")
	if err != nil {
		return fmt.Errorf("the replica container's port: %w", err)
	}
	r.url = fmt.Sprintf("postgres://%s:%s@%s:%d/postgres?sslmode=disable", c.user, c.password, host, mapped.Num())
	return nil
}

// replicaContainerReady bounds how long a replica container may take to copy
// the primary and open for reads: a bound on a hang, not a measure, since a
// container's copy cannot be watched as the local one is (replica.go).
const replicaContainerReady = 10 * time.Minute
