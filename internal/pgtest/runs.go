package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// How the harness names its databases, and how it tells a live run's from a
// dead one's.
//
// Every database starts with the prefix (WORKSHOP_DB_PREFIX, default wvs_),
// then says what it is:
//
//	<prefix>tpl_<content hash>_<scale>_seed<seed>   a seeded template, kept
//	<prefix>tpl_<content hash>_<name>               a Derived template, kept
//	<prefix>tpl_…_building                           a template being seeded
//	<prefix>run_<run id>_read_<scale>                a run's read-only copy
//	<prefix>run_<run id>_clone_<n>                   a run's writable copy
//
// The run id is 32 random bits, so names never collide across processes,
// containers or machines sharing a server. For as long as it lives, a run
// holds a session-level advisory lock keyed on its id, on a connection of its
// own, and a shared advisory lock on each template it copies; every
// connection it opens carries <prefix>run_<run id> as its application_name.
// A run's copy is dropped by anyone but its run only when the run is provably
// gone: its lock can be taken (PostgreSQL releases a session's locks when the
// session ends, however the process died) and pg_stat_activity shows no
// session of it (see claimEndedRun; a run that lost only its lock connection
// still has others, and takes its lock again: see runLock). A template is
// dropped only when its lock can be taken: nobody uses it. A name the harness
// cannot parse is never dropped automatically.

// validPrefix keeps every name the harness makes a plain, short identifier:
// PostgreSQL truncates names beyond 63 bytes.
var validPrefix = regexp.MustCompile(`^[a-z][a-z0-9_]{0,20}_$`)

// parsePrefix returns the prefix setting says, or the default when it is empty.
func parsePrefix(setting string) (string, error) {
	if setting == "" {
		return workshopenv.DefaultPrefix, nil
	}
	if !validPrefix.MatchString(setting) {
		return "", fmt.Errorf("%s=%s: want lower-case letters, digits and underscores, ending in _, at most 22 bytes, e.g. wvs_alice_", workshopenv.DBPrefix, shop.Quote(setting))
	}
	return setting, nil
}

// Prefix returns the prefix of this process's databases: WORKSHOP_DB_PREFIX,
// or wvs_ when it is unset (or invalid, which the harness reports). Other
// stores the tests write to (Redis) name their keys after it too, so that
// runs under different prefixes never see each other's.
func Prefix() string { return prefixFromEnv() }

// prefixFromEnv is the prefix of this process, the default if the setting is invalid
// (start reports that).
func prefixFromEnv() string {
	prefix, err := parsePrefix(os.Getenv(workshopenv.DBPrefix))
	if err != nil {
		return workshopenv.DefaultPrefix
	}
	return prefix
}

// contentHash is a hash of everything a template's rows depend on: the shop
// package's source (generator, loader, schema, indexes), GeneratorVersion and
// the seed.
var contentHash = sync.OnceValue(func() string {
	hash, err := hashSource(shop.Source)
	if err != nil {
		panic(fmt.Sprintf("pgtest: hash the embedded shop source: %v", err)) // embedded: cannot fail to read
	}
	return hash
})

// hashSource returns 8 hex digits of a hash of the files at the top of fsys,
// but tests, with GeneratorVersion and the seed.
func hashSource(fsys fs.FS) (string, error) {
	sum := sha256.New()
	entries, err := fs.ReadDir(fsys, ".") // sorted by name
	if err != nil {
		return "", err
	}
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(sum, "%s %d\n", name, len(data))
		sum.Write(data)
	}
	fmt.Fprintf(sum, "generator %d seed %d\n", shop.GeneratorVersion, Seed)
	return hex.EncodeToString(sum.Sum(nil)[:4]), nil
}

// templateName is the name of the template of the shop at scale s under prefix.
func templateName(prefix string, s shop.Scale) string {
	return fmt.Sprintf("%stpl_%s_%s_seed%d", prefix, contentHash(), s, Seed)
}

// derivedName is the name of the template of a [Derived] called name under
// prefix: it follows the shop's source as the shop's template does.
func derivedName(prefix, name string) string {
	return fmt.Sprintf("%stpl_%s_%s", prefix, contentHash(), name)
}

// runName is the name of a database of run id under prefix: kind is
// "read_<scale>" or "clone_<n>".
func runName(prefix, id, kind string) string {
	return fmt.Sprintf("%srun_%s_%s", prefix, id, kind)
}

var (
	runNamePattern      = regexp.MustCompile(`^run_([0-9a-f]{8})_(?:read_top[0-9]+|clone_[0-9]+)$`)
	templateNamePattern = regexp.MustCompile(`^tpl_([0-9a-f]{8})_(?:top[0-9]+_seed[0-9]+|[a-z][a-z0-9]{0,18})(_building)?$`)
	derivedNamePattern  = regexp.MustCompile(`^[a-z][a-z0-9]{0,18}$`)
	legacyNamePattern   = regexp.MustCompile(`^(?:read_[0-9]+_top[0-9]+|clone_[0-9]+_[0-9]+)$`)
)

// kind is what a database name under a prefix says it is.
type kind int

const (
	unknown  kind = iota // not a name the harness makes: never dropped
	runCopy              // a run's read-only or writable copy
	template             // a seeded template
	building             // a template being seeded
	legacy               // a copy named by an older harness, by process id
)

// parsed is a database name taken apart.
type parsed struct {
	kind kind
	run  string // the run id of a runCopy
	hash string // the content hash of a template or building
	base string // the template's name, for a building
}

// parseName takes apart name, a database under prefix.
func parseName(prefix, name string) parsed {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return parsed{}
	}
	if m := runNamePattern.FindStringSubmatch(rest); m != nil {
		return parsed{kind: runCopy, run: m[1]}
	}
	if m := templateNamePattern.FindStringSubmatch(rest); m != nil {
		if m[2] != "" {
			return parsed{kind: building, hash: m[1], base: strings.TrimSuffix(name, m[2])}
		}
		return parsed{kind: template, hash: m[1], base: name}
	}
	if legacyNamePattern.MatchString(rest) {
		return parsed{kind: legacy}
	}
	return parsed{}
}

// Advisory lock keys: two 32-bit halves, the first saying what the second is.
const (
	runLockSpace      int32 = 0x77767372 // "wvsr": the second half is a run id
	templateLockSpace int32 = 0x77767374 // "wvst": the second half hashes a template's name
)

// runKey is the second half of the advisory lock of run id.
func runKey(id string) int32 {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 4 {
		panic(fmt.Sprintf("pgtest: run id %q is not 8 hex digits", id)) // ids come from newRunID
	}
	return int32(binary.BigEndian.Uint32(b))
}

// templateKey is the second half of the advisory lock of template name.
func templateKey(name string) int32 {
	hash := fnv.New32a()
	hash.Write([]byte(name))
	return int32(hash.Sum32())
}

// newRunID returns 8 random hex digits.
func newRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DropOptions says which of the harness's databases [DropDatabases] drops.
// Whatever they say, it drops nothing a live run uses: copies of a run that
// still holds its lock or has a session open, templates a live run copies.
type DropOptions struct {
	// Prefix selects the databases: those named <Prefix>…. Empty means
	// WORKSHOP_DB_PREFIX, or wvs_.
	Prefix string
	// Templates drops the current templates too (when no live run uses them),
	// so that the next run seeds afresh. Without it, only copies left by dead
	// runs and templates superseded by a change to the shop's source go.
	Templates bool
	// Legacy drops copies named by the harness before run ids (<prefix>read_<pid>_…,
	// <prefix>clone_<pid>_<n>). Nothing proves such a run dead, so each is
	// dropped without FORCE: PostgreSQL refuses while any session is on it.
	Legacy bool
	// DryRun reports what would be dropped and drops nothing.
	DryRun bool
}

// Verdict is what [DropDatabases] decided for one database, and why.
type Verdict struct {
	Name    string
	Dropped bool // or, with DryRun, would be
	Reason  string
}

// DropDatabases drops the databases the harness made on the server at url
// that opts selects and no live run uses, and the login roles and
// replication slots of runs that have ended (a slot nobody reads holds WAL on
// the server for ever), and says for each database, role and slot under the
// prefix what it did and why.
func DropDatabases(ctx context.Context, url string, opts DropOptions) ([]Verdict, error) {
	prefix := opts.Prefix
	if prefix == "" {
		var err error
		if prefix, err = parsePrefix(os.Getenv(workshopenv.DBPrefix)); err != nil {
			return nil, err
		}
	} else if _, err := parsePrefix(prefix); err != nil {
		return nil, fmt.Errorf("prefix %s: %w", shop.Quote(prefix), err)
	}
	cfg, err := pgxpool.ParseConfig(url) // a URL the pools take (pool_max_conns) is fine here too
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", workshopenv.Redacted(url), err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = prefix + "dropdbs" // no run's: it proves no run live
	connectCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := pgx.ConnectConfig(connectCtx, cfg.ConnConfig)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", workshopenv.Redacted(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	verdicts, err := reclaim(ctx, conn, prefix, "", opts)
	slots, slotErr := reclaimSlots(ctx, conn, prefix, "", opts.DryRun)
	return append(verdicts, slots...), errors.Join(err, slotErr)
}

// reclaim drops the databases under prefix that opts selects and no live run
// uses, then the roles of runs that have ended (see LoginRole), never those
// of run self, using conn, whose session must hold no
// template lock (its own locks would not stop it).
func reclaim(ctx context.Context, conn *pgx.Conn, prefix, self string, opts DropOptions) ([]Verdict, error) {
	const underPrefix = `SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1 ORDER BY datname`
	rows, err := conn.Query(ctx, underPrefix, prefix)
	if err != nil {
		return nil, fmt.Errorf("list the databases named %s…: %w", prefix, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the databases named %s…: %w", prefix, err)
	}
	current := contentHash()
	var verdicts []Verdict
	var errs []error
	for _, name := range names {
		v, err := judge(ctx, conn, prefix, name, parseName(prefix, name), current, self, opts)
		verdicts = append(verdicts, v)
		if err != nil {
			errs = append(errs, err)
		}
	}
	roles, err := reclaimRoles(ctx, conn, prefix, self, opts.DryRun) // after the databases holding their privileges
	verdicts = append(verdicts, roles...)
	return verdicts, errors.Join(append(errs, err)...)
}

// judge decides whether the database name may be dropped, and unless opts
// says DryRun, drops it.
func judge(ctx context.Context, conn *pgx.Conn, prefix, name string, p parsed, current, self string, opts DropOptions) (Verdict, error) {
	keep := func(reason string) (Verdict, error) { return Verdict{Name: name, Reason: reason}, nil }
	switch p.kind {
	case runCopy:
		if p.run == self {
			return keep("this run's own")
		}
		return dropOfEndedRun(ctx, conn, prefix, name, p.run, opts.DryRun)
	case template, building:
		if p.kind == template && p.hash == current && !opts.Templates {
			return keep("the current template")
		}
		// A seeder holds the seeding lock (harness.template), this harness's and
		// the older one's, which took no template lock.
		var free bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1::int8)", lockKey(p.base)).Scan(&free); err != nil {
			return Verdict{Name: name}, fmt.Errorf("try the seeding lock of %s: %w", p.base, err)
		}
		if !free {
			return keep("being seeded")
		}
		v, err := judgeTemplate(ctx, conn, name, p, current, opts)
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1::int8)", lockKey(p.base)); uerr != nil {
			err = errors.Join(err, fmt.Errorf("release the seeding lock of %s: %w", p.base, uerr))
		}
		return v, err
	case legacy:
		if !opts.Legacy {
			return keep("named by an older harness: nothing proves its run dead (dropdbs -legacy drops it when no session is on it)")
		}
		if opts.DryRun {
			return Verdict{Name: name, Dropped: true, Reason: "named by an older harness; dropped only if no session is on it"}, nil
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident(name)); err != nil {
			if isObjectInUse(err) {
				return keep("named by an older harness, and a session is on it")
			}
			return Verdict{Name: name}, fmt.Errorf("drop %s: %w", name, err)
		}
		return Verdict{Name: name, Dropped: true, Reason: "named by an older harness, no session on it"}, nil
	default:
		return keep("not a name the harness makes")
	}
}

// judgeTemplate is judge for a template or a building, under its seeding lock.
func judgeTemplate(ctx context.Context, conn *pgx.Conn, name string, p parsed, current string, opts DropOptions) (Verdict, error) {
	if p.kind == building {
		return dropUnderLock(ctx, conn, name, building, templateLockSpace, templateKey(p.base), opts.DryRun,
			"a seeding that never finished", "a live run copies its template")
	}
	why := "superseded: the shop's source has changed"
	if p.hash == current {
		why = "a current template, no run using it"
	}
	return dropUnderLock(ctx, conn, name, template, templateLockSpace, templateKey(p.base), opts.DryRun,
		why, "a live run copies it")
}

// dropOfEndedRun drops name, a copy made by run id under prefix, if the run
// has ended (see claimEndedRun), holding the run's lock while it drops. It
// drops without FORCE: PostgreSQL refuses while any session is on the copy,
// whoever opened it, so nothing in use is dropped between the look at
// pg_stat_activity and the drop.
func dropOfEndedRun(ctx context.Context, conn *pgx.Conn, prefix, name, id string, dryRun bool) (v Verdict, err error) {
	v = Verdict{Name: name}
	release, live, err := claimEndedRun(ctx, conn, prefix, id)
	if err != nil || release == nil {
		v.Reason = live
		return v, err
	}
	defer func() { err = errors.Join(err, release()) }()
	v.Reason = "left by run " + id + ", which has ended"
	if dryRun {
		v.Dropped = true
		return v, nil
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)); err != nil {
		if isObjectInUse(err) {
			v.Reason = "left by run " + id + ", but a session is on it"
			return v, nil
		}
		return v, fmt.Errorf("drop %s: %w", name, err)
	}
	v.Dropped = true
	return v, nil
}

// dropUnderLock drops name, a template or a building (kind k), if the
// exclusive advisory lock (space, key) is free, holding it while it drops;
// without FORCE: a session on it means something unknown uses it.
func dropUnderLock(ctx context.Context, conn *pgx.Conn, name string, k kind, space, key int32, dryRun bool, why, live string) (v Verdict, err error) {
	v = Verdict{Name: name}
	var free bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1::int4, $2::int4)", space, key).Scan(&free); err != nil {
		return v, fmt.Errorf("try the lock of %s: %w", name, err)
	}
	if !free {
		v.Reason = live
		return v, nil
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1::int4, $2::int4)", space, key); uerr != nil {
			err = errors.Join(err, fmt.Errorf("release the lock of %s: %w", name, uerr))
		}
	}()
	v.Reason = why
	if dryRun {
		v.Dropped = true
		return v, nil
	}
	var sqls []string
	switch k {
	case template:
		sqls = []string{"ALTER DATABASE " + ident(name) + " WITH IS_TEMPLATE false", "DROP DATABASE IF EXISTS " + ident(name)}
	default:
		sqls = []string{"DROP DATABASE IF EXISTS " + ident(name)}
	}
	for _, sql := range sqls {
		if _, err := conn.Exec(ctx, sql); err != nil {
			if isObjectInUse(err) {
				v.Reason = "a session is on it"
				if k == template { // still whole: mark it a template again
					_, err = conn.Exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE true")
				}
				return v, err
			}
			if isUndefinedDatabase(err) { // dropped meanwhile by someone else
				v.Reason = "already gone"
				return v, nil
			}
			return v, fmt.Errorf("drop %s: %w", name, err)
		}
	}
	v.Dropped = true
	return v, nil
}

// dropForce drops the database name, a run's own, ending the sessions on it.
// DROP DATABASE … WITH (FORCE) does that, but PostgreSQL (15 at least)
// refuses it to a user that is no superuser while an autovacuum worker is on
// the database (the worker is no role's the user is a member of); then this ends
// the client sessions on it (the run's, and its login roles', which the user
// is a member of) and drops it plainly, which stops autovacuum itself.
func dropForce(ctx context.Context, conn executor, name string) error {
	_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)")
	if err == nil || !isInsufficientPrivilege(err) {
		return err
	}
	const endClients = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`
	if _, err := conn.Exec(ctx, endClients, name); err != nil {
		return fmt.Errorf("end the sessions on %s: %w", name, err)
	}
	// Waits up to 5 s for the ended sessions to go, and stops autovacuum.
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name))
	return err
}

// isObjectInUse reports whether err is PostgreSQL refusing to drop a database
// that a session is on (SQLSTATE 55006).
func isObjectInUse(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55006"
}

// isUndefinedDatabase reports whether err says the database does not exist (3D000).
func isUndefinedDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}
