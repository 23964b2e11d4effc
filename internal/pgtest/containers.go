package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"works-vs-scales/internal/rttproxy"
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
const howToBuildImages = "no registry to pull from? bash scripts/images builds stand-ins and says which WORKSHOP_*_IMAGE to export, " +
	"and export TESTCONTAINERS_RYUK_DISABLED=true: testcontainers' reaper is an image too"

// PartLabel is the Docker label on each container the harness starts, naming
// the part it plays: postgres, redis, pgbouncer or replica. The CI's
// container step finds them by it in Docker's events, to prove that lessons
// 13 and 18 ran on containers and not on a machine's own pgbouncer or
// PostgreSQL binaries.
const PartLabel = "works-vs-scales.part"

// postgresContainer is the run's PostgreSQL container, once this binary has
// started or joined it; nil on a server found by URL.
var postgresContainer atomic.Pointer[containerInfo]

// containerInfo is what a second container needs to reach the first.
type containerInfo struct {
	image    string // a replica runs the same
	ip       string // on Docker's network
	user     string
	password string
	addr     string // host:port where the test binary reaches it (a mapped port)
	gateway  string // this machine's address on the container's network; "" if Docker gave none
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
//
// PgBouncer connects to the server the way target does, as the local one
// does: when target is the container's own address, straight to the
// container over Docker's network; when target is anything else (the
// harness's latency proxy with WORKSHOP_RTT, a test's fault proxy), through
// a relay on this machine (see relayForContainers) to target's address. Going
// straight to the container there would bypass the proxy: with WORKSHOP_RTT
// set, PgBouncer's server connections would pay no round trip while a pool
// connecting straight pays one per query, and a comparison of the two would
// measure the bypass, not the pooling. The client connects to PgBouncer's
// mapped port with no added latency, as it connects to the local one.
func startPgBouncerContainer(ctx context.Context, c *containerInfo, target *pgx.ConnConfig, cfg PgBouncerConfig) (*pgx.ConnConfig, func() error, error) {
	const port = 6432
	server := fmt.Sprintf("host=%s port=5432 dbname=%s", c.ip, target.Database)
	var relay *rttproxy.Proxy
	var extraHosts []string
	if addr := net.JoinHostPort(target.Host, strconv.Itoa(int(target.Port))); addr != c.addr {
		var host string
		var err error
		relay, host, err = relayForContainers(c, addr)
		if err != nil {
			return nil, func() error { return nil }, err
		}
		server = fmt.Sprintf("host=%s port=%d dbname=%s", host, relay.Addr().Port, target.Database)
		if host == dockerHostName {
			extraHosts = append(extraHosts, dockerHostName+":host-gateway")
		}
	}
	ini := pgBouncerINI(target, cfg, server, "0.0.0.0", port, "/etc/pgbouncer/userlist.txt")
	image := pgBouncerImage()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        image,
			Labels:       map[string]string{PartLabel: "pgbouncer"},
			ExposedPorts: []string{strconv.Itoa(port) + "/tcp"},
			Files: []testcontainers.ContainerFile{
				{Reader: strings.NewReader(ini), ContainerFilePath: "/etc/pgbouncer/pgbouncer.ini", FileMode: 0o644},
				{Reader: strings.NewReader(pgBouncerUserlist(target)), ContainerFilePath: "/etc/pgbouncer/userlist.txt", FileMode: 0o644},
			},
			HostConfigModifier: func(hc *container.HostConfig) { hc.ExtraHosts = append(hc.ExtraHosts, extraHosts...) },
			WaitingFor:         wait.ForListeningPort(strconv.Itoa(port) + "/tcp").WithStartupTimeout(containerReadyTimeout),
		},
		Started: true,
	})
	stop := func() error {
		err := testcontainers.TerminateContainer(ctr)
		if relay != nil {
			err = errors.Join(err, relay.Close())
		}
		return err
	}
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

// dockerHostName is the name a container gives this machine when told
// host-gateway, as Docker Desktop does by itself.
const dockerHostName = "host.docker.internal"

// relayForContainers starts a relay, adding no latency, from an address a
// container reaches to addr, an address of this machine's loopback where a
// container cannot reach, and returns it with the host a container names it
// by. It listens on this machine's address on Docker's bridge (c.gateway;
// Docker on Linux), and where that is no address of this machine (Docker
// Desktop, whose engine runs in a VM that forwards host.docker.internal to
// this machine's loopback) on loopback, named host.docker.internal. The
// bridge's address is reached only from this machine and its containers; what
// the relay reaches asks for a password all the same.
func relayForContainers(c *containerInfo, addr string) (*rttproxy.Proxy, string, error) {
	if c.gateway != "" {
		if relay, err := rttproxy.StartOn(net.JoinHostPort(c.gateway, "0"), "tcp", addr, 0); err == nil {
			return relay, c.gateway, nil
		}
	}
	relay, err := rttproxy.StartOn("127.0.0.1:0", "tcp", addr, 0)
	if err != nil {
		return nil, "", fmt.Errorf("a relay from PgBouncer's container to %s: %w", addr, err)
	}
	return relay, dockerHostName, nil
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
			Labels:       map[string]string{PartLabel: "replica"},
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
