package shopd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"

	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// Seed is the generator seed of the shop InitDatabase loads: the harness's.
const Seed uint64 = 1

// markerPrefix starts the comment InitDatabase leaves on each database it
// creates: it touches no database without it.
const markerPrefix = "made by works-vs-scales cmd/shopd -init: "

// marker is the comment of a database InitDatabase finished loading.
func marker(s shop.Scale) string {
	return fmt.Sprintf("%sshop %v seed %d generator %d", markerPrefix, s, Seed, shop.GeneratorVersion)
}

// ErrNotOurs is returned by InitDatabase for a database of that name that it
// did not create: it is left alone.
var ErrNotOurs = errors.New("a database of that name exists and was not made by cmd/shopd -init")

// InitDatabase makes sure the server at serverURL has a database called name
// holding the generated shop at scale s, and returns its URL. It creates and
// loads the database if it does not exist (seconds for shop.Small), reuses it
// if an earlier call loaded it, and loads it again if an earlier call was
// interrupted or loaded another version of the shop. A database of that name
// it did not create gets ErrNotOurs, and is not touched.
func InitDatabase(ctx context.Context, serverURL, name string, s shop.Scale) (string, error) {
	dbURL, err := withDatabase(serverURL, name)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("shopd init: connect to %s: %w", workshopenv.Redacted(serverURL), err)
	}
	defer conn.Close(context.Background())

	// The comment of a database is read with shobj_description.
	const commentQuery = `SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1`
	var comment string
	switch err := conn.QueryRow(ctx, commentQuery, name).Scan(&comment); {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return "", fmt.Errorf("shopd init: look for database %s: %w", name, err)
	case comment == marker(s):
		return dbURL, nil
	case !strings.HasPrefix(comment, markerPrefix):
		return "", fmt.Errorf("shopd init: %s: %w", pgx.Identifier{name}.Sanitize(), ErrNotOurs)
	default: // ours, but half loaded or another version of the shop
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("shopd init: drop the outdated %s: %w", name, err)
		}
	}
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", fmt.Errorf("shopd init: create %s: %w", ident, err)
	}
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS "+quoteLiteral(markerPrefix+"loading")); err != nil {
		return "", fmt.Errorf("shopd init: mark %s: %w", ident, err)
	}
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", fmt.Errorf("shopd init: connect to %s: %w", ident, err)
	}
	defer db.Close(context.Background())
	if err := shop.Load(ctx, db, s, Seed); err != nil {
		return "", fmt.Errorf("shopd init: load %s: %w", ident, err)
	}
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS "+quoteLiteral(marker(s))); err != nil {
		return "", fmt.Errorf("shopd init: mark %s loaded: %w", ident, err)
	}
	return dbURL, nil
}

// withDatabase returns serverURL naming database name instead of its own.
func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("shopd init: server URL %s: not a postgres:// URL: %w", shop.Quote(workshopenv.Redacted(serverURL)), shop.ErrInvalidConfig)
	}
	if name == "" {
		return "", fmt.Errorf("shopd init: no database name: %w", shop.ErrInvalidConfig)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// quoteLiteral quotes s as an SQL string literal (COMMENT takes no
// parameters).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// DefaultDatabaseName is the database cmd/shopd -init and cmd/load make:
// shopd_top10000 under WORKSHOP_DB_PREFIX (wvs_ when unset), so that
// trainees sharing a server keep apart.
func DefaultDatabaseName() string {
	return workshopenv.Prefix() + "shopd_" + shop.Small.String()
}

// DropDatabase drops the database called name on the server at serverURL if
// InitDatabase made it, and reports whether it dropped one. A database of
// that name InitDatabase did not make gets ErrNotOurs, and is not touched.
func DropDatabase(ctx context.Context, serverURL, name string) (bool, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return false, fmt.Errorf("shopd drop: connect to %s: %w", workshopenv.Redacted(serverURL), err)
	}
	defer conn.Close(context.Background())
	const commentQuery = `SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1`
	var comment string
	switch err := conn.QueryRow(ctx, commentQuery, name).Scan(&comment); {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("shopd drop: look for database %s: %w", name, err)
	case !strings.HasPrefix(comment, markerPrefix):
		return false, fmt.Errorf("shopd drop: %s: %w", pgx.Identifier{name}.Sanitize(), ErrNotOurs)
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return false, fmt.Errorf("shopd drop: %s: %w", name, err)
	}
	return true, nil
}

// ErrNoShop is returned by CheckShop for a database without the shop's tables.
var ErrNoShop = errors.New("the database holds no shop (no orders table): run cmd/shopd with -init, or point -db at a shop")

// CheckShop returns an error wrapping ErrNoShop if the database at dbURL
// does not hold the shop's tables, so that a service started on the wrong
// database says so at once rather than with a 500 per request.
func CheckShop(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("shopd: connect to %s: %w", workshopenv.Redacted(dbURL), err)
	}
	defer conn.Close(context.Background())
	// to_regclass is NULL for a table that does not exist.
	const shopQuery = `SELECT to_regclass('orders') IS NOT NULL AND to_regclass('users') IS NOT NULL`
	var ok bool
	if err := conn.QueryRow(ctx, shopQuery).Scan(&ok); err != nil {
		return fmt.Errorf("shopd: look for the shop in %s: %w", workshopenv.Redacted(dbURL), err)
	}
	if !ok {
		return fmt.Errorf("shopd: %s: %w", workshopenv.Redacted(dbURL), ErrNoShop)
	}
	return nil
}
