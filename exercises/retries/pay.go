// Package retries is lesson 9's exercise: yours to change.
//
// A colleague made payments retry, and stopped double-clicks from paying
// twice by remembering each key's payment in memory (the naive version's
// RetryingPayments, which Payments below runs). Users are still charged
// twice: when fifty requests with one key arrive at once, and when the
// gateway takes the money, the reply is lost, and the loop tries again. Make
// Pay charge once per key, then check:
//
//	go test -race -tags exercise -run Exercise09 ./bench/retries
//
// The check runs your Payments on two servers, the second in a process of
// its own, against one database and one gateway: it counts the gateway's
// charges and your payment rows (one of each per key) for fifty callers with
// one key at once, and looks at what each got; then a reply is lost after
// the charge.
// One answer is in works-vs-scales/scalable/retries.
package retries

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	naive "works-vs-scales/naive/retries"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Payments takes payments through a gateway and records them in db.
type Payments struct {
	naive *naive.RetryingPayments // replace me
}

// NewPayments returns Payments that charge through gw and record in db; or
// an error wrapping [shop.ErrInvalidConfig] for no database or no gateway
// client.
func NewPayments(db *pgxpool.Pool, gw *gateway.Client) (*Payments, error) {
	payments, err := naive.NewRetryingPayments(db, gw)
	if err != nil {
		return nil, err
	}
	return &Payments{naive: payments}, nil
}

// Pay charges req once per key, retrying transient failures, and records it.
func (p *Payments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	return p.naive.Pay(ctx, key, req)
}
