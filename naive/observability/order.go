package observability

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Notifier tells a user that their order is placed: a mailer, a push
// service. It is the slow, remote step of placing an order.
type Notifier interface {
	Notify(ctx context.Context, userID, orderID int64) error
}

// Config is what a Service needs.
type Config struct {
	DB       *pgxpool.Pool
	Notifier Notifier
	Logger   *log.Logger // log.Default() if nil
}

// Service places orders.
type Service struct {
	db       *pgxpool.Pool
	notifier Notifier
	log      *log.Logger
}

// NewService returns a Service from cfg. A missing database or notifier is
// refused with shop.ErrInvalidConfig.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.DB == nil:
		return nil, fmt.Errorf("order service with no database: %w", shop.ErrInvalidConfig)
	case cfg.Notifier == nil:
		return nil, fmt.Errorf("order service with no notifier: %w", shop.ErrInvalidConfig)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = log.Default()
	}
	return &Service{db: cfg.DB, notifier: cfg.Notifier, log: logger}, nil
}

// ProcessOrder places an order of quantity units of a product for a user, at
// the product's price, tells the user, and returns the order's id. If the
// order is placed but the user could not be told, it returns the id and the
// error.
//
// It logs a line when it starts, after each step, and how long it took.
//
// A quantity below 1 is refused with shop.ErrInvalidQuantity, an unknown user
// with shop.ErrUserNotFound and an unknown product with shop.ErrProductNotFound.
func (s *Service) ProcessOrder(ctx context.Context, userID, productID int64, quantity int32) (int64, error) {
	start := time.Now()
	s.log.Printf("processing order: user %d, product %d, quantity %d", userID, productID, quantity)
	if quantity <= 0 {
		return 0, fmt.Errorf("order %d of product %d: %w", quantity, productID, shop.ErrInvalidQuantity)
	}
	orderID, err := s.createOrder(ctx, userID, productID, quantity)
	if err != nil {
		s.log.Printf("order failed: %v", err)
		return 0, err
	}
	s.log.Printf("order %d created", orderID)
	if err := s.notifier.Notify(ctx, userID, orderID); err != nil {
		s.log.Printf("notify failed: %v", err)
		return orderID, fmt.Errorf("order %d placed, but telling user %d failed: %w", orderID, userID, err)
	}
	s.log.Printf("order %d done in %v", orderID, time.Since(start))
	return orderID, nil
}

// createOrder inserts the order and its one line, in one transaction.
func (s *Service) createOrder(ctx context.Context, userID, productID int64, quantity int32) (int64, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("order product %d for user %d: %w", productID, userID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, does nothing

	const insertOrder = `INSERT INTO orders (user_id, status, created_at) VALUES ($1, 'pending', now()) RETURNING id`
	var orderID int64
	err = tx.QueryRow(ctx, insertOrder, userID).Scan(&orderID)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return 0, fmt.Errorf("order for user %d: %w", userID, shop.ErrUserNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("order for user %d: %w", userID, err)
	}
	const insertItem = `INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
		SELECT $1, 1, id, $3, price_cents FROM products WHERE id = $2`
	tag, err := tx.Exec(ctx, insertItem, orderID, productID, quantity)
	if err != nil {
		return 0, fmt.Errorf("add product %d to order %d: %w", productID, orderID, err)
	}
	if tag.RowsAffected() == 0 {
		return 0, fmt.Errorf("add product %d to order %d: %w", productID, orderID, shop.ErrProductNotFound)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("order product %d for user %d: %w", productID, userID, err)
	}
	return orderID, nil
}
