package connections

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"works-vs-scales/shop"
)

// Config says how a Shop reaches its database.
type Config struct {
	// Conn is the database to connect to, as pgx.ParseConfig returns it.
	Conn *pgx.ConnConfig
	// MaxConns is the most connections open at once: a request beyond it
	// waits for one to close. Zero means no limit.
	MaxConns int32
}

// Shop answers requests about the shop's users, each on a connection of
// its own: it connects, asks, and closes.
type Shop struct {
	cfg      *pgx.ConnConfig
	slots    chan struct{} // one per open connection; nil for no limit
	connects atomic.Int64
}

// New returns a Shop that connects as cfg says. It connects to nothing yet;
// a config without Conn, with a Conn not made by pgx.ParseConfig, or with a
// negative MaxConns, is refused with an error wrapping [shop.ErrInvalidConfig].
func New(ctx context.Context, cfg Config) (*Shop, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	s := &Shop{cfg: cfg.Conn.Copy()}
	if cfg.MaxConns > 0 {
		s.slots = make(chan struct{}, cfg.MaxConns)
	}
	return s, nil
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
// [shop.ErrUserNotFound]. It opens a connection, runs one query, and closes
// the connection.
func (s *Shop) GetUser(ctx context.Context, id int64) (shop.User, error) {
	conn, release, err := s.connect(ctx)
	if err != nil {
		return shop.User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	defer release()

	const getUser = `SELECT id, name, email, phone, created_at FROM users WHERE id = $1`
	var u shop.User
	err = conn.QueryRow(ctx, getUser, id).Scan(&u.ID, &u.Name, &u.Email, &u.Phone, &u.CreatedAt)
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
	conn, release, err := s.connect(ctx)
	if err != nil {
		return Spend{}, fmt.Errorf("spend of user %d: %w", userID, err)
	}
	defer release()

	const userSpend = `
		SELECT count(DISTINCT o.id), coalesce(sum(i.quantity * i.price_cents), 0)::bigint
		FROM users u
		LEFT JOIN orders o ON o.user_id = u.id
		LEFT JOIN order_items i ON i.order_id = o.id
		WHERE u.id = $1
		GROUP BY u.id`
	var spend Spend
	err = conn.QueryRow(ctx, userSpend, userID).Scan(&spend.Orders, &spend.Cents)
	if errors.Is(err, pgx.ErrNoRows) {
		return Spend{}, fmt.Errorf("spend of user %d: %w", userID, shop.ErrUserNotFound)
	}
	if err != nil {
		return Spend{}, fmt.Errorf("spend of user %d: %w", userID, err)
	}
	return spend, nil
}

// connect opens a connection, waiting first for a slot when MaxConns
// limits them, and returns it with the function that closes it.
func (s *Shop) connect(ctx context.Context) (*pgx.Conn, func(), error) {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("wait for a connection: %w", ctx.Err())
		}
	}
	free := func() {
		if s.slots != nil {
			<-s.slots
		}
	}
	s.connects.Add(1)
	conn, err := pgx.ConnectConfig(ctx, s.cfg)
	if err != nil {
		free()
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	return conn, func() {
		conn.Close(context.WithoutCancel(ctx))
		free()
	}, nil
}

// Connects returns how many connections the Shop has opened.
func (s *Shop) Connects() int64 { return s.connects.Load() }

// Close closes the Shop. It holds no connection between requests: there is
// nothing to close.
func (s *Shop) Close() {}
