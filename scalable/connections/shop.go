package connections

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Config says how a Shop reaches its database.
type Config struct {
	// Conn is the database to connect to, as pgx.ParseConfig returns it.
	Conn *pgx.ConnConfig
	// MaxConns is the most connections open at once: a request beyond it
	// waits for one to be free. Zero means pgxpool's default, the larger of
	// 4 and the number of CPUs.
	MaxConns int32
}

// Shop answers requests about the shop's users on a pool of connections,
// opened when first needed and kept for the next request.
type Shop struct {
	pool *pgxpool.Pool
}

// New returns a Shop with a pool as cfg says. It connects to nothing yet;
// a config without Conn, with a Conn not made by pgx.ParseConfig, or with a
// negative MaxConns, is refused with an error wrapping [shop.ErrInvalidConfig].
//
// The pool runs statements in [pgx.QueryExecModeCacheDescribe]: each
// statement is parsed again on every run (an unnamed prepared statement, in
// the same round trip as its execution), and only its result's description
// is cached. Nothing is left prepared on the server connection, which
// PgBouncer's transaction pooling may hand to another client next.
func New(ctx context.Context, cfg Config) (*Shop, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	poolConfig, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("shop: %w", err)
	}
	poolConfig.ConnConfig = cfg.Conn.Copy()
	poolConfig.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	if cfg.MaxConns > 0 {
		poolConfig.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		return nil, fmt.Errorf("shop: %w", err)
	}
	return &Shop{pool: pool}, nil
}

// checkConfig returns an error wrapping [shop.ErrInvalidConfig] for a config
// without a database, with one pgx.ParseConfig did not make, or with a
// negative number of connections.
func checkConfig(cfg Config) error {
	switch {
	case cfg.Conn == nil:
		return fmt.Errorf("shop: no database to connect to: %w", shop.ErrInvalidConfig)
	case cfg.Conn.BuildFrontend == nil: // pgx panics on a config it did not make
		return fmt.Errorf("shop: a connection config not made by pgx.ParseConfig: %w", shop.ErrInvalidConfig)
	case cfg.MaxConns < 0:
		return fmt.Errorf("shop: %d connections at most: %w", cfg.MaxConns, shop.ErrInvalidConfig)
	}
	return nil
}

// GetUser returns the user with the given id, or an error wrapping
// [shop.ErrUserNotFound]: one query, on a connection of the pool.
func (s *Shop) GetUser(ctx context.Context, id int64) (shop.User, error) {
	const getUser = `SELECT id, name, email, phone, created_at FROM users WHERE id = $1`
	var u shop.User
	err := s.pool.QueryRow(ctx, getUser, id).Scan(&u.ID, &u.Name, &u.Email, &u.Phone, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return shop.User{}, fmt.Errorf("get user %d: %w", id, shop.ErrUserNotFound)
	}
	if err != nil {
		return shop.User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

// Spend is what a user has spent at the shop.
type Spend struct {
	Orders int64 // orders with at least one line
	Cents  int64 // the lines' quantity × price, over every order
}

// UserSpend returns what the user with the given id has spent, over all
// their orders: a query that reads every line of them. A user without orders
// has spent nothing; an unknown user is an error wrapping
// [shop.ErrUserNotFound].
func (s *Shop) UserSpend(ctx context.Context, userID int64) (Spend, error) {
	const userSpend = `
		SELECT count(DISTINCT o.id), coalesce(sum(i.quantity * i.price_cents), 0)::bigint
		FROM users u
		LEFT JOIN orders o ON o.user_id = u.id
		LEFT JOIN order_items i ON i.order_id = o.id
		WHERE u.id = $1
		GROUP BY u.id`
	var spend Spend
	err := s.pool.QueryRow(ctx, userSpend, userID).Scan(&spend.Orders, &spend.Cents)
	if errors.Is(err, pgx.ErrNoRows) {
		return Spend{}, fmt.Errorf("spend of user %d: %w", userID, shop.ErrUserNotFound)
	}
	if err != nil {
		return Spend{}, fmt.Errorf("spend of user %d: %w", userID, err)
	}
	return spend, nil
}

// Connects returns how many connections the Shop's pool has opened.
func (s *Shop) Connects() int64 { return s.pool.Stat().NewConnsCount() }

// Stat returns the pool's statistics: among them how often a request found
// every connection busy (EmptyAcquireCount) and how long requests waited
// for one (AcquireDuration).
func (s *Shop) Stat() *pgxpool.Stat { return s.pool.Stat() }

// Close closes the pool's connections, waiting for those in use.
func (s *Shop) Close() { s.pool.Close() }
