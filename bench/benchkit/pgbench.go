package benchkit

import (
	"cmp"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// FindPgbench returns the path of pgbench, the yardstick lessons 14 and 19
// hold their loaders to: $WORKSHOP_PGBENCH, on PATH, or in an installed
// PostgreSQL's bin directory.
func FindPgbench() (string, error) {
	if path := os.Getenv("WORKSHOP_PGBENCH"); path != "" {
		return path, nil
	}
	if path, err := exec.LookPath("pgbench"); err == nil {
		return path, nil
	}
	if paths, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench"); len(paths) > 0 {
		major := func(path string) int { // /usr/lib/postgresql/15/bin/pgbench: 15
			n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
			return n
		}
		return slices.MaxFunc(paths, func(a, b string) int { return cmp.Compare(major(a), major(b)) }), nil
	}
	return "", errors.New("no pgbench: install PostgreSQL's server package (Debian: apt-get install postgresql; macOS: brew install postgresql), or set WORKSHOP_PGBENCH to its path")
}

// RunPgbench runs pgbench, a path from FindPgbench, with args on db's
// database, as db's user, and fails tb with what pgbench printed if it
// fails.
func RunPgbench(tb testing.TB, pgbench string, db *pgxpool.Pool, args ...string) {
	tb.Helper()
	cfg := db.Config().ConnConfig
	cmd := exec.Command(pgbench, append(args,
		"-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User, cfg.Database)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+cfg.Password)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}
