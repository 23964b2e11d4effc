// Package workshopenv names the environment variables the workshop reads,
// for the test harness and the service alike, and reads the two that carry a
// value to check: the round-trip time and the database prefix.
//
// It imports nothing of the harness, so that cmd/shopd and cmd/load can read
// the same variables as the tests without linking the tests' code.
package workshopenv

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"
)

// The environment variables the workshop reads.
const (
	// DatabaseURL names a PostgreSQL server to use as is, e.g.
	// postgres://postgres@127.0.0.1:5432/postgres. The harness connects to
	// that database only to create and drop its own.
	DatabaseURL = "WORKSHOP_DATABASE_URL"
	// RedisURL names a Redis to use as is, e.g. redis://127.0.0.1:6379/0.
	RedisURL = "WORKSHOP_REDIS_URL"
	// PostgresImage overrides the image of the container the harness starts
	// when DatabaseURL is not set.
	PostgresImage = "WORKSHOP_POSTGRES_IMAGE"
	// RedisImage overrides the image of the Redis container the harness
	// starts when RedisURL is not set.
	RedisImage = "WORKSHOP_REDIS_IMAGE"
	// PgBouncerImage overrides the image of the PgBouncer container the
	// harness starts for lesson 13 when PostgreSQL is a container too.
	// scripts/images builds stand-ins of all three for machines without a
	// registry (works-vs-scales/postgres:15, /redis:7, /pgbouncer:1).
	PgBouncerImage = "WORKSHOP_PGBOUNCER_IMAGE"
	// DBPrefix starts the name of every database the harness and the service
	// create, e.g. wvs_alice_: trainees sharing one server keep apart, and
	// nothing outside the prefix is touched.
	DBPrefix = "WORKSHOP_DB_PREFIX"
	// RTT adds a network round-trip time to every connection, e.g. "1ms".
	RTT = "WORKSHOP_RTT"
	// PgBouncerURL names a PgBouncer in transaction mode, for lesson 13,
	// instead of the one its tests start.
	PgBouncerURL = "WORKSHOP_PGBOUNCER_URL"
	// ReplicaURL names a streaming replica of the server, for lesson 18,
	// instead of the one its tests start.
	ReplicaURL = "WORKSHOP_REPLICA_URL"
	// ReplicaOwn, set to 1, says the replica of ReplicaURL is the trainee's
	// own (docker-compose's), whose apply delay lesson 18's tests may change.
	// Unset, it is the room's, shared: the harness changes nothing on it, and
	// a test that needs another delay than it has is skipped.
	ReplicaOwn = "WORKSHOP_REPLICA_OWN"
	// MaxConns caps the connections one trainee's tests, benchmarks and
	// checks hold on the server at once, the harness's own included, e.g. 9
	// for ten trainees on a server of 100: the harness keeps HarnessConns of
	// it, the pools on the trainee's databases share the rest, and a
	// benchmark or test that needs more skips, saying so. Unset, no cap.
	MaxConns = "WORKSHOP_MAX_CONNS"
	// RoomDatabase names the database the room's table of verdicts is kept
	// in (go run ./cmd/workshop room), on the server of DatabaseURL; unset,
	// DefaultRoomDatabase.
	RoomDatabase = "WORKSHOP_ROOM_DATABASE"
	// Large, set to 1, adds the largest sizes to the benchmarks; set to 2, a
	// further size where a lesson has one (lesson 19: 30M orders).
	Large = "WORKSHOP_LARGE"
)

// DefaultPrefix is the database prefix when DBPrefix is not set.
const DefaultPrefix = "wvs_"

// Prefix returns the database prefix DBPrefix sets, or DefaultPrefix. The
// harness checks it further (see pgtest).
func Prefix() string {
	if p := os.Getenv(DBPrefix); p != "" {
		return p
	}
	return DefaultPrefix
}

// DefaultRoomDatabase is the room's database when RoomDatabase is not set.
const DefaultRoomDatabase = "wvs_room"

// HarnessConns is the part of a trainee's budget (MaxConns) the test harness
// keeps for itself on the server's maintenance database: its admin pool
// (HarnessConns-2 under a budget: a template's build holds one while it
// drops on another), its run's lock, and one more: a moment's connection
// that measures the round trip when the run starts, and later the one that
// holds the room's turn for a check larger than the budget
// (pgtest.TakeLargeTurn). The pools on the trainee's databases share the
// rest (DatabaseConns).
const HarnessConns = 4

// MinBudget is the smallest budget MaxConns may set: the harness's part and
// two connections for the pools on the trainee's databases.
const MinBudget = HarnessConns + 2

// ConnBudget returns the per-trainee connection budget MaxConns sets, the
// harness's part included, and whether one is set: a whole number of at
// least MinBudget.
func ConnBudget() (int, bool, error) {
	setting := os.Getenv(MaxConns)
	if setting == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(setting)
	if err != nil || n < MinBudget {
		return 0, false, fmt.Errorf("%s=%q: want a whole number of connections, at least %d (%d the harness keeps, and 2 for the tests' databases)", MaxConns, setting, MinBudget, HarnessConns)
	}
	return n, true, nil
}

// DatabaseConns returns what a budget of n connections leaves the pools on a
// trainee's own databases, together: n less HarnessConns.
func DatabaseConns(n int) int { return n - HarnessConns }

// PoolsReserve is what the harness's pools on a trainee's databases keep of
// DatabaseConns while a test's own pools work (benchkit.ConnsReserve).
const PoolsReserve = 3

// OwnConns returns what a budget of n connections leaves a test's or
// check's own pools together: DatabaseConns less PoolsReserve, at least 1.
func OwnConns(n int) int { return max(1, DatabaseConns(n)-PoolsReserve) }

// LargestCheckPools is the most connections an exercise's check's own pools
// hold together (lesson 20's: a pool of 2×8 requests and 4); each check
// above the budget is held to it by a test (TestTheCheckRunsAtItsSizeInItsTurn).
const LargestCheckPools = 20

// CheckExcess returns how many connections a check whose own pools hold
// pools together adds, in its turn, to a trainee's budget of n: pools less
// OwnConns(n), or 0 when they fit. A room on a server needs its trainees'
// budgets and the largest check's excess, CheckExcess(n, LargestCheckPools):
// one check above the budget runs at a time (pgtest.TakeLargeTurn).
func CheckExcess(n, pools int) int { return max(0, pools-OwnConns(n)) }

// ParseRTT reads a setting of RTT: empty is none; otherwise a duration that
// is not negative, such as 1ms or 500us.
func ParseRTT(setting string) (time.Duration, error) {
	if setting == "" {
		return 0, nil
	}
	rtt, err := time.ParseDuration(setting)
	if err != nil || rtt < 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 1ms or 500us", RTT, setting)
	}
	return rtt, nil
}

// Redacted returns a server's URL with its password hidden, for messages:
// [url.URL.Redacted]. A setting that is not a URL with a scheme (a
// key=value connection string may carry a password anywhere) is not shown.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "(a setting that is not a URL, not shown: it may hold a password)"
	}
	return u.Redacted()
}
