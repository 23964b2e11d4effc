package replicas

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// DefaultMaxWait is how long a read after a write waits for the replica
// before it reads from the primary, unless [Store.SetMaxWait] says otherwise.
const DefaultMaxWait = 100 * time.Millisecond

// sweepAbove is how many users' positions the Store holds before it forgets
// those the replica has replayed.
const sweepAbove = 1024

// Store places orders on a primary and reads them from its replica, except
// that a user reads their own writes. It is safe for concurrent use.
type Store struct {
	primary, replica *pgxpool.Pool
	maxWait          atomic.Int64 // a time.Duration

	mu      sync.Mutex
	written map[int64]lsn // user id → the primary's position after their last write

	replicaReads, primaryReads, waits atomic.Int64
}

// Stats counts where a Store's reads went.
type Stats struct {
	ReplicaReads int64 // reads the replica answered
	PrimaryReads int64 // reads the primary answered
	Waits        int64 // reads that waited for the replica to catch up
}

// New returns a Store that writes to primary and reads from replica, a
// streaming replica of it.
func New(primary, replica *pgxpool.Pool) (*Store, error) {
	if primary == nil || replica == nil {
		return nil, fmt.Errorf("replica store: a primary and a replica are both needed: %w", shop.ErrInvalidConfig)
	}
	s := &Store{primary: primary, replica: replica, written: make(map[int64]lsn)}
	s.maxWait.Store(int64(DefaultMaxWait))
	return s, nil
}

// SetMaxWait sets how long a read after a write waits for the replica before
// it reads from the primary; 0 reads from the primary at once whenever the
// replica is behind.
func (s *Store) SetMaxWait(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("replica store: max wait %v: %w", d, shop.ErrInvalidConfig)
	}
	s.maxWait.Store(int64(d))
	return nil
}

// Stats returns where the Store's reads have gone so far.
func (s *Store) Stats() Stats {
	return Stats{ReplicaReads: s.replicaReads.Load(), PrimaryReads: s.primaryReads.Load(), Waits: s.waits.Load()}
}

// PlaceOrder places a pending order of quantity units of a product for a
// user, at the product's price, on the primary, and returns its id. It then
// asks the primary for its WAL position, which the user's next reads wait
// for.
func (s *Store) PlaceOrder(ctx context.Context, userID, productID int64, quantity int32) (int64, error) {
	orderID, err := placeOrder(ctx, s.primary, userID, productID, quantity)
	if err != nil {
		return 0, err
	}
	// After the commit, so the position is at or past its commit record.
	const position = `SELECT pg_current_wal_insert_lsn()::text`
	var text string
	if err := s.primary.QueryRow(ctx, position).Scan(&text); err != nil {
		// The order is placed, but without its position the user's next read
		// may miss it: the caller hears both.
		return orderID, fmt.Errorf("order %d placed; read the primary's WAL position: %w", orderID, err)
	}
	at, err := parseLSN(text)
	if err != nil {
		return orderID, fmt.Errorf("order %d placed: %w", orderID, err)
	}
	s.mu.Lock()
	if at > s.written[userID] {
		s.written[userID] = at
	}
	s.mu.Unlock()
	return orderID, nil
}

// RecentOrders returns up to limit of the user's orders, newest first,
// without their items, including every order placed through this Store.
func (s *Store) RecentOrders(ctx context.Context, userID int64, limit int) ([]shop.Order, error) {
	if err := shop.CheckPageSize(limit); err != nil {
		return nil, fmt.Errorf("recent orders of user %d: %w", userID, err)
	}
	db, err := s.readerFor(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("recent orders of user %d: %w", userID, err)
	}
	return recentOrders(ctx, db, userID, limit)
}

// Product returns a product as the replica has it: a price a moment old is
// fine on a product page.
func (s *Store) Product(ctx context.Context, id int64) (shop.Product, error) {
	s.replicaReads.Add(1)
	return product(ctx, s.replica, id)
}

// readerFor returns the pool that has the user's last write: the replica if
// the user wrote nothing it has not replayed, or once it has, within MaxWait;
// the primary otherwise.
func (s *Store) readerFor(ctx context.Context, userID int64) (*pgxpool.Pool, error) {
	s.mu.Lock()
	want, wrote := s.written[userID]
	s.mu.Unlock()
	if !wrote {
		s.replicaReads.Add(1)
		return s.replica, nil
	}
	deadline := time.Now().Add(time.Duration(s.maxWait.Load()))
	pause := time.Millisecond
	for waited := false; ; waited = true {
		replayed, err := replayedLSN(ctx, s.replica)
		if err != nil {
			return nil, err
		}
		if replayed >= want {
			s.forget(userID, want, replayed)
			if waited {
				s.waits.Add(1)
			}
			s.replicaReads.Add(1)
			return s.replica, nil
		}
		if time.Now().Add(pause).After(deadline) {
			s.primaryReads.Add(1)
			return s.primary, nil
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		pause = min(2*pause, 8*time.Millisecond)
	}
}

// forget drops the user's position, want, unless a write since moved it,
// and, when the Store holds many, every position the replica has replayed:
// their users' reads go to the replica without asking.
func (s *Store) forget(userID int64, want, replayed lsn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written[userID] == want {
		delete(s.written, userID)
	}
	if len(s.written) <= sweepAbove {
		return
	}
	for user, at := range s.written {
		if at <= replayed {
			delete(s.written, user)
		}
	}
}

// lsn is a position in PostgreSQL's write-ahead log.
type lsn uint64

// parseLSN parses PostgreSQL's text form of a position, e.g. "0/16B3748".
func parseLSN(text string) (lsn, error) {
	hi, lo, ok := strings.Cut(text, "/")
	h, herr := strconv.ParseUint(hi, 16, 32)
	l, lerr := strconv.ParseUint(lo, 16, 32)
	if !ok || herr != nil || lerr != nil {
		return 0, fmt.Errorf("WAL position %q: want two hexadecimal numbers, as 0/16B3748", text)
	}
	return lsn(h<<32 | l), nil
}

// replayedLSN returns the position up to which the replica has applied the
// primary's WAL.
func replayedLSN(ctx context.Context, replica *pgxpool.Pool) (lsn, error) {
	const replayed = `SELECT pg_last_wal_replay_lsn()::text`
	var text *string
	if err := replica.QueryRow(ctx, replayed).Scan(&text); err != nil {
		return 0, fmt.Errorf("read the replica's replay position: %w", err)
	}
	if text == nil {
		return 0, errors.New("read the replica's replay position: it is not a replica (pg_last_wal_replay_lsn() is NULL)")
	}
	return parseLSN(*text)
}

// placeOrder places the order in one statement: no order is inserted unless
// both the user and the product exist.
func placeOrder(ctx context.Context, db *pgxpool.Pool, userID, productID int64, quantity int32) (int64, error) {
	if quantity <= 0 {
		return 0, fmt.Errorf("order %d of product %d: %w", quantity, productID, shop.ErrInvalidQuantity)
	}
	const place = `
		WITH placed AS (
			INSERT INTO orders (user_id, status, created_at)
			SELECT $1, 'pending', now()
			WHERE EXISTS (SELECT FROM users WHERE id = $1) AND EXISTS (SELECT FROM products WHERE id = $2)
			RETURNING id)
		INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
		SELECT placed.id, 1, p.id, $3, p.price_cents FROM placed, products p WHERE p.id = $2
		RETURNING order_id`
	var orderID int64
	err := db.QueryRow(ctx, place, userID, productID, quantity).Scan(&orderID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, missing(ctx, db, userID, productID)
	}
	if err != nil {
		return 0, fmt.Errorf("order product %d for user %d: %w", productID, userID, err)
	}
	return orderID, nil
}

// missing says which of the user and the product does not exist.
func missing(ctx context.Context, db *pgxpool.Pool, userID, productID int64) error {
	const exists = `SELECT EXISTS (SELECT FROM users WHERE id = $1)`
	var userExists bool
	if err := db.QueryRow(ctx, exists, userID).Scan(&userExists); err != nil {
		return fmt.Errorf("order for user %d: %w", userID, err)
	}
	if !userExists {
		return fmt.Errorf("order for user %d: %w", userID, shop.ErrUserNotFound)
	}
	return fmt.Errorf("order product %d: %w", productID, shop.ErrProductNotFound)
}

func recentOrders(ctx context.Context, db *pgxpool.Pool, userID int64, limit int) ([]shop.Order, error) {
	const recent = `
		SELECT id, user_id, status, created_at FROM orders
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	rows, err := db.Query(ctx, recent, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent orders of user %d: %w", userID, err)
	}
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Order, error) {
		var o shop.Order
		err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("recent orders of user %d: %w", userID, err)
	}
	return orders, nil
}

func product(ctx context.Context, db *pgxpool.Pool, id int64) (shop.Product, error) {
	const byID = `SELECT id, name, category, price_cents FROM products WHERE id = $1`
	var p shop.Product
	err := db.QueryRow(ctx, byID, id).Scan(&p.ID, &p.Name, &p.Category, &p.PriceCents)
	if errors.Is(err, pgx.ErrNoRows) {
		return shop.Product{}, fmt.Errorf("product %d: %w", id, shop.ErrProductNotFound)
	}
	if err != nil {
		return shop.Product{}, fmt.Errorf("product %d: %w", id, err)
	}
	return p, nil
}
