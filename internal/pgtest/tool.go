package pgtest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ToolDatabase names a database for a tool outside the tests (cmd/trace) to
// create, use and drop, and makes it reclaimable as a test run's copies
// are: it takes a new run's lock on conn, held until conn's session ends,
// and returns the name of a writable copy of that run under prefix (the
// value of WORKSHOP_DB_PREFIX; empty means wvs_), and tags conn's session
// with the run's application_name. A tool killed before it
// drops the database leaves it to the next test run on the server, or to
// cmd/dropdbs, which drop it once conn's session is gone. An invalid prefix
// is an error.
func ToolDatabase(ctx context.Context, conn *pgx.Conn, prefix string) (string, error) {
	prefix, err := parsePrefix(prefix)
	if err != nil {
		return "", err
	}
	id, err := holdRunLock(ctx, conn)
	if err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "SELECT set_config('application_name', $1, false)", runTag(prefix, id)); err != nil {
		return "", fmt.Errorf("tag the session of run %s: %w", id, err)
	}
	return runName(prefix, id, "clone_1"), nil
}
