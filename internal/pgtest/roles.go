package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/workshopenv"
)

// Roles are named like a run's databases, and reclaimed the same way:
//
//	<prefix>run_<run id>_role_<n>   a login role a test made
//
// A role belongs to the whole server, not to a database, so dropping a dead
// run's copies does not drop it: reclaim drops it after them, once the run's
// lock and pg_stat_activity show the run gone, and the run drops its own when
// it ends.
var roleNamePattern = regexp.MustCompile(`^run_([0-9a-f]{8})_role_[0-9]+$`)

// parseRole returns the run id of role, a role under prefix, or "" if the
// harness makes no role of that name.
func parseRole(prefix, role string) string {
	rest, ok := strings.CutPrefix(role, prefix)
	if !ok {
		return ""
	}
	if m := roleNamePattern.FindStringSubmatch(rest); m != nil {
		return m[1]
	}
	return ""
}

// LoginRole creates a login role that may open at most connectionLimit
// connections to the server (CONNECTION LIMIT) and read every table of db's
// database, and returns a copy of db's connection config that logs in as
// that role. The role is dropped when the test ends, its sessions ended
// first; one left by a run that was killed is dropped by the next run on
// the server, as its databases are.
func LoginRole(tb testing.TB, db *pgxpool.Pool, connectionLimit int) *pgx.ConnConfig {
	tb.Helper()
	if connectionLimit < 1 {
		tb.Fatalf("pgtest: a login role with a connection limit of %d: want at least 1", connectionLimit)
	}
	h := open(tb)
	name := runName(h.prefix, h.runID, fmt.Sprintf("role_%d", h.roles.Add(1)))
	tb.Cleanup(func() { // registered before the role exists; runs before db's copy is dropped
		h.own.removeRole(name)
		if err := dropRole(context.Background(), db, name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	secret := make([]byte, 16)
	rand.Read(secret)
	password := hex.EncodeToString(secret)
	ctx := context.Background()
	// Utility statements take no parameters: the name is quoted, the
	// password is hex and the limit a number.
	create := fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' CONNECTION LIMIT %d", ident(name), password, connectionLimit)
	if _, err := db.Exec(ctx, create); err != nil {
		if isInsufficientPrivilege(err) {
			tb.Fatalf("pgtest: create role %s: %v\n\nLesson 13 makes login roles of its own: the user of %s needs CREATEROLE, "+
				"which the server's DBA grants (ALTER ROLE <that user> CREATEROLE; lessons/TRAINER.md, \"What a server needs\")", name, err, workshopenv.DatabaseURL)
		}
		tb.Fatalf("pgtest: create role %s: %v", name, err)
	}
	h.own.addRole(name)
	// Membership lets a role that is no superuser (CREATEROLE only, as a DBA
	// grants it) see the new role's sessions in full, end them and drop what
	// it owns; a superuser has all that already.
	if _, err := db.Exec(ctx, "GRANT "+ident(name)+" TO CURRENT_USER"); err != nil {
		tb.Fatalf("pgtest: make this run's user a member of role %s: %v", name, err)
	}
	if _, err := db.Exec(ctx, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+ident(name)); err != nil {
		tb.Fatalf("pgtest: let role %s read %s: %v", name, db.Config().ConnConfig.Database, err)
	}
	cfg := db.Config().ConnConfig.Copy()
	cfg.User, cfg.Password = name, password
	return cfg
}

// executor is a connection or a pool.
type executor interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// dropRole ends role's sessions and drops it, with its privileges in the
// database conn is on; a role already gone is no error.
func dropRole(ctx context.Context, conn executor, role string) error {
	for _, sql := range []string{
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
		"DROP OWNED BY " + ident(role), // its privileges on this database's tables
		"DROP ROLE IF EXISTS " + ident(role),
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = append(args, role)
		}
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			if isUndefinedObject(err) { // DROP OWNED BY a role already gone
				return nil
			}
			return fmt.Errorf("drop role %s: %w", role, err)
		}
	}
	return nil
}

// reclaimRoles drops the roles under prefix of runs that have ended, never
// those of run self, as reclaim does their databases; it runs after them, so
// that no copy holds a privilege of a role it drops.
func reclaimRoles(ctx context.Context, conn *pgx.Conn, prefix, self string, dryRun bool) ([]Verdict, error) {
	const underPrefix = `SELECT rolname FROM pg_roles WHERE left(rolname, length($1)) = $1 ORDER BY rolname`
	rows, err := conn.Query(ctx, underPrefix, prefix)
	if err != nil {
		return nil, fmt.Errorf("list the roles named %s…: %w", prefix, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the roles named %s…: %w", prefix, err)
	}
	var verdicts []Verdict
	var errs []error
	for _, name := range names {
		run := parseRole(prefix, name)
		switch {
		case run == "":
			verdicts = append(verdicts, Verdict{Name: "role " + name, Reason: "not a name the harness makes"})
		case run == self:
			verdicts = append(verdicts, Verdict{Name: "role " + name, Reason: "this run's own"})
		default:
			v, err := dropRoleOfEndedRun(ctx, conn, prefix, name, run, dryRun)
			verdicts = append(verdicts, v)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return verdicts, errors.Join(errs...)
}

// dropRoleOfEndedRun drops role, of run under prefix, if the run has ended
// (see claimEndedRun: then no session logs in as the role either), holding
// the run's lock while it drops.
func dropRoleOfEndedRun(ctx context.Context, conn *pgx.Conn, prefix, role, run string, dryRun bool) (v Verdict, err error) {
	v = Verdict{Name: "role " + role}
	release, live, err := claimEndedRun(ctx, conn, prefix, run)
	if err != nil || release == nil {
		v.Reason = live
		return v, err
	}
	defer func() { err = errors.Join(err, release()) }()
	v.Reason = "left by run " + run + ", which has ended"
	if dryRun {
		v.Dropped = true
		return v, nil
	}
	if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+ident(role)); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "2BP01" { // dependent objects: a database not dropped yet
			v.Reason = "left by run " + run + ", but it still has privileges in a database: " + pgErr.Detail
			return v, nil
		}
		return v, fmt.Errorf("drop role %s: %w", role, err)
	}
	v.Dropped = true
	return v, nil
}

// dropRunRoles drops every role of this run, on conn.
func (h *harness) dropRunRoles(ctx context.Context, conn *pgx.Conn) error {
	const runRoles = `SELECT rolname FROM pg_roles WHERE left(rolname, length($1)) = $1`
	rows, err := conn.Query(ctx, runRoles, runName(h.prefix, h.runID, "role_"))
	if err != nil {
		return fmt.Errorf("list run %s's roles: %w", h.runID, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list run %s's roles: %w", h.runID, err)
	}
	var errs []error
	for _, name := range names {
		if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name); err != nil {
			errs = append(errs, fmt.Errorf("end the sessions of role %s: %w", name, err))
		}
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+ident(name)); err != nil {
			errs = append(errs, fmt.Errorf("drop role %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// isInsufficientPrivilege reports whether err is PostgreSQL refusing for
// want of a privilege (SQLSTATE 42501).
func isInsufficientPrivilege(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// isUndefinedObject reports whether err says a role does not exist (42704).
func isUndefinedObject(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42704"
}
