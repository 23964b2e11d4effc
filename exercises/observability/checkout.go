// Package observability is lesson 15's exercise: a checkout that has become slow
// for the shop's best customers, and nobody knows why.
//
// Run the check, read the waterfall it prints of one checkout for a busy
// user, find the step that grows with the user's history, and make it cost a
// fixed number of queries, whatever that history. The check:
//
//	go test -tags exercise -run '^TestExercise15$' -v ./bench/observability
package observability

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	scalable "works-vs-scales/scalable/observability"
)

// Checkout places orders and credits the buyer's loyalty points.
type Checkout struct {
	orders *scalable.Service
	db     *pgxpool.Pool
	tracer trace.Tracer
}

// NewCheckout returns a Checkout placing orders with the lesson's
// instrumented service, made from cfg.
func NewCheckout(cfg scalable.Config) (*Checkout, error) {
	orders, err := scalable.NewService(cfg)
	if err != nil {
		return nil, fmt.Errorf("checkout: %w", err)
	}
	return &Checkout{orders: orders, db: cfg.DB, tracer: cfg.Tracing.Tracer("works-vs-scales/exercises/observability")}, nil
}

// Checkout places the order and returns its id and the user's loyalty
// points, counting the new order.
func (c *Checkout) Checkout(ctx context.Context, userID, productID int64, quantity int32) (orderID, points int64, err error) {
	ctx, span := c.tracer.Start(ctx, "Checkout", trace.WithAttributes(attribute.Int64("user.id", userID)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if orderID, err = c.orders.ProcessOrder(ctx, userID, productID, quantity); err != nil {
		return orderID, 0, err
	}
	loyaltyCtx, loyalty := c.tracer.Start(ctx, "loyalty points")
	points, err = LoyaltyPoints(loyaltyCtx, c.db, userID)
	loyalty.End()
	if err != nil {
		return orderID, 0, err
	}
	return orderID, points, nil
}

// LoyaltyPoints returns a user's loyalty points: one point per whole 100
// cents the user ever spent, over all their orders' lines (quantity × price).
func LoyaltyPoints(ctx context.Context, db *pgxpool.Pool, userID int64) (int64, error) {
	const ordersQuery = `SELECT id FROM orders WHERE user_id = $1`
	rows, err := db.Query(ctx, ordersQuery, userID)
	if err != nil {
		return 0, fmt.Errorf("loyalty points of user %d: %w", userID, err)
	}
	var orderIDs []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("loyalty points of user %d: %w", userID, err)
		}
		orderIDs = append(orderIDs, id)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("loyalty points of user %d: %w", userID, err)
	}

	const orderTotalQuery = `SELECT coalesce(sum(quantity * price_cents), 0) FROM order_items WHERE order_id = $1`
	var spent int64
	for _, id := range orderIDs {
		var total int64
		if err := db.QueryRow(ctx, orderTotalQuery, id).Scan(&total); err != nil {
			return 0, fmt.Errorf("loyalty points of user %d: total of order %d: %w", userID, id, err)
		}
		spent += total
	}
	return spent / 100, nil
}
