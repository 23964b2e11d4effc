// Package circuitbreaker is lesson 10's exercise: yours to change.
//
// Payments below runs the naive version: while the gateway is down, every
// payment waits out three timeouts and is lost. Put a circuit breaker in front
// of the gateway (write one, or use github.com/sony/gobreaker/v2) and, while
// it is open, queue the payment in the outbox (the payment_outbox table, which
// the lesson's Relay drains) instead of failing it. Then check:
//
//	go test -race -tags exercise -run Exercise10 ./bench/circuitbreaker
//
// The check runs your Payments on two servers, the second in a process of
// its own, making the same payments at once into a hung gateway: it counts
// the requests that reach it and the payments kept, each once, in the
// outbox. Nothing in it charges a queued payment. Then, on a fake clock
// (testing/synctest), your breaker must open, let one probe through after a
// while, open again when it fails, and close when a probe passes. A
// goroutine your breaker starts must return once it is dropped.
// One answer is in works-vs-scales/scalable/circuitbreaker.
package circuitbreaker

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/circuitbreaker"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Payments takes payments through a gateway and records them in db.
type Payments struct {
	naive *naive.Payments // replace me
}

// NewPayments returns Payments that charge through gw, giving each call
// timeout, and record in db; or an error wrapping [shop.ErrInvalidConfig] for
// a configuration no payment could work with.
func NewPayments(db *pgxpool.Pool, gw *gateway.Client, timeout time.Duration) (*Payments, error) {
	payments, err := naive.NewPayments(db, gw, timeout)
	if err != nil {
		return nil, err
	}
	return &Payments{naive: payments}, nil
}

// Pay charges req, once per key, and records the payment; while the gateway
// is down, it queues the payment and returns it with status queued.
func (p *Payments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	return p.naive.Pay(ctx, key, req)
}
