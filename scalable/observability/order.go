package observability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"works-vs-scales/shop"
)

// Notifier tells a user that their order is placed: a mailer, a push
// service. It is the slow, remote step of placing an order.
type Notifier interface {
	Notify(ctx context.Context, userID, orderID int64) error
}

// Config is what a Service needs. Every field is required: a service that
// cannot be seen is not deployed by accident.
type Config struct {
	DB       *pgxpool.Pool        // with a QueryTracer, for a span per query
	Notifier Notifier             // tells the user
	Logger   *slog.Logger         // from NewLogger, for trace ids in each record
	Tracing  trace.TracerProvider // noop.NewTracerProvider() to trace nothing
	Metrics  *Metrics
}

// Service places orders.
type Service struct {
	db       *pgxpool.Pool
	notifier Notifier
	log      *slog.Logger
	tracer   trace.Tracer
	metrics  *Metrics
}

// NewService returns a Service from cfg. A missing field is refused with
// shop.ErrInvalidConfig.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.DB == nil:
		return nil, fmt.Errorf("order service with no database: %w", shop.ErrInvalidConfig)
	case cfg.Notifier == nil:
		return nil, fmt.Errorf("order service with no notifier: %w", shop.ErrInvalidConfig)
	case cfg.Logger == nil:
		return nil, fmt.Errorf("order service with no logger: %w", shop.ErrInvalidConfig)
	case cfg.Tracing == nil:
		return nil, fmt.Errorf("order service with no tracer provider: %w", shop.ErrInvalidConfig)
	case cfg.Metrics == nil:
		return nil, fmt.Errorf("order service with no metrics: %w", shop.ErrInvalidConfig)
	}
	return &Service{
		db:       cfg.DB,
		notifier: cfg.Notifier,
		log:      cfg.Logger,
		tracer:   cfg.Tracing.Tracer("works-vs-scales/scalable/observability"),
		metrics:  cfg.Metrics,
	}, nil
}

// ProcessOrder places an order of quantity units of a product for a user, at
// the product's price, tells the user, and returns the order's id. If the
// order is placed but the user could not be told, it returns the id and the
// error.
//
// Each call is a span, ProcessOrder, with a child per step ("create order",
// "notify") and, through the pool's QueryTracer, one per query; each step logs
// a record with the trace id at debug level and the call one at info level;
// Metrics count it and time it.
//
// A quantity below 1 is refused with shop.ErrInvalidQuantity, an unknown user
// with shop.ErrUserNotFound and an unknown product with shop.ErrProductNotFound.
func (s *Service) ProcessOrder(ctx context.Context, userID, productID int64, quantity int32) (orderID int64, err error) {
	start := time.Now()
	ctx, span := s.tracer.Start(ctx, "ProcessOrder", trace.WithAttributes(
		attribute.Int64("user.id", userID), attribute.Int64("product.id", productID), attribute.Int("quantity", int(quantity))))
	defer func() {
		elapsed := time.Since(start)
		s.metrics.Observe("ProcessOrder", userID, elapsed, err)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			s.log.ErrorContext(ctx, "process order", "user_id", userID, "product_id", productID, "order_id", orderID, "duration", elapsed, "err", err)
		} else {
			s.log.InfoContext(ctx, "process order", "user_id", userID, "product_id", productID, "order_id", orderID, "duration", elapsed)
		}
		span.End()
	}()
	if quantity <= 0 {
		return 0, fmt.Errorf("order %d of product %d: %w", quantity, productID, shop.ErrInvalidQuantity)
	}

	if orderID, err = s.createOrder(ctx, userID, productID, quantity); err != nil {
		return 0, err
	}
	span.SetAttributes(attribute.Int64("order.id", orderID))
	if err := s.notify(ctx, userID, orderID); err != nil {
		return orderID, err
	}
	return orderID, nil
}

// createOrder inserts the order and its one line, in one transaction.
func (s *Service) createOrder(ctx context.Context, userID, productID int64, quantity int32) (orderID int64, err error) {
	ctx, span := s.tracer.Start(ctx, "create order")
	defer func() { endStep(span, err) }()
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("order product %d for user %d: %w", productID, userID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, does nothing

	const insertOrder = `INSERT INTO orders (user_id, status, created_at) VALUES ($1, 'pending', now()) RETURNING id`
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
	s.log.DebugContext(ctx, "order created", "order_id", orderID)
	return orderID, nil
}

// notify tells the user.
func (s *Service) notify(ctx context.Context, userID, orderID int64) (err error) {
	ctx, span := s.tracer.Start(ctx, "notify")
	defer func() { endStep(span, err) }()
	if err := s.notifier.Notify(ctx, userID, orderID); err != nil {
		return fmt.Errorf("order %d placed, but telling user %d failed: %w", orderID, userID, err)
	}
	s.log.DebugContext(ctx, "user notified", "order_id", orderID)
	return nil
}

// endStep ends a step's span, marking it failed if err is not nil.
func endStep(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
