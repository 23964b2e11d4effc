package shopd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"

	"works-vs-scales/internal/load"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// OrdersTargets returns the requests of a load on GET /users/{id}/orders of
// the service at baseURL (e.g. "http://127.0.0.1:8080"), for internal/load:
// the user of each request is drawn uniformly from the shop's users by its
// sequence number and seed, so that two runs send the same requests. The
// power law of orders per user (see shop.Scale) makes most requests small and
// a few huge, as a real shop's traffic is.
func OrdersTargets(baseURL string, s shop.Scale, seed uint64) load.Targets {
	base := strings.TrimSuffix(baseURL, "/")
	users := s.Users()
	return func(seq uint64) load.Target {
		id := rand.New(rand.NewPCG(seed, seq)).IntN(users) + 1
		return load.Target{Method: http.MethodGet, URL: fmt.Sprintf("%s/users/%d/orders", base, id)}
	}
}

// Mix is a mixed workload's shares of requests, as weights: pages of a
// user's orders (GET /users/{id}/orders?limit=PageSize, the same page from
// every wiring), products (GET /products/{id}), payments under a fresh
// Idempotency-Key, and payments that repeat one made before, key and body,
// as a client retrying does.
type Mix struct {
	Orders, Products, PayNew, PayReuse int
	PageSize                           int
}

// DefaultMix is mostly reads, as a shop's traffic is, with a payment in
// ten, one in five of them a retry.
var DefaultMix = Mix{Orders: 60, Products: 30, PayNew: 8, PayReuse: 2, PageSize: DefaultPageSize}

// String writes the mix as cmd/load's -mix flag reads it.
func (m Mix) String() string {
	return fmt.Sprintf("orders=%d,products=%d,pay-new=%d,pay-reuse=%d,page=%d", m.Orders, m.Products, m.PayNew, m.PayReuse, m.PageSize)
}

// Check returns an error wrapping shop.ErrInvalidConfig for a mix that
// cannot be sent: a negative weight, no weight at all, a page size out of
// range (1 to MaxOrdersPage, the largest page every wiring serves).
func (m Mix) Check() error {
	if m.Orders < 0 || m.Products < 0 || m.PayNew < 0 || m.PayReuse < 0 || m.Orders+m.Products+m.PayNew+m.PayReuse == 0 {
		return fmt.Errorf("mix %s: want weights of 0 or more, not all 0: %w", m, shop.ErrInvalidConfig)
	}
	if m.PageSize < 1 || m.PageSize > MaxOrdersPage {
		return fmt.Errorf("mix %s: page size %d: want 1 to %d, the largest page every wiring serves: %w", m, m.PageSize, MaxOrdersPage, shop.ErrInvalidConfig)
	}
	return nil
}

// ReusedPayments is how many payments a Workload makes before its load,
// whose keys and bodies its retries repeat.
const ReusedPayments = 20

// A Workload is a mixed load on the service at Base: what cmd/load sends.
// Every request names its user's client in X-Forwarded-For (10.x.y.z from
// the user's id), so that a service reading that header (cmd/shopd
// -client-header=X-Forwarded-For) limits each user, not the one process
// playing them all.
type Workload struct {
	Base  string
	Scale shop.Scale
	Mix   Mix
	// Run names the run in its payments' keys and references, so that two
	// runs against one database never share a key.
	Run string
}

// Prepared returns the payments to make once before the load: the ones
// its retries repeat.
func (w Workload) Prepared() []load.Target {
	targets := make([]load.Target, ReusedPayments)
	for i := range targets {
		r := rand.New(rand.NewPCG(0, uint64(i)))
		targets[i] = w.payment(r, fmt.Sprintf("load-%s-reused-%d", w.Run, i))
	}
	return targets
}

// Targets returns the requests of one step of load, drawn from the mix by
// the request's sequence number and seed: give each step its own seed, or
// its fresh payments repeat an earlier step's keys.
func (w Workload) Targets(seed uint64) load.Targets {
	m := w.Mix
	total := m.Orders + m.Products + m.PayNew + m.PayReuse
	prepared := w.Prepared()
	base := strings.TrimSuffix(w.Base, "/")
	return func(seq uint64) load.Target {
		r := rand.New(rand.NewPCG(seed+1, seq))
		pick := r.IntN(total)
		switch {
		case pick < m.Orders:
			user := r.IntN(w.Scale.Users()) + 1
			return withClient(load.Target{URL: fmt.Sprintf("%s/users/%d/orders?limit=%d", base, user, m.PageSize)}, user)
		case pick < m.Orders+m.Products:
			user := r.IntN(w.Scale.Users()) + 1
			return withClient(load.Target{URL: fmt.Sprintf("%s/products/%d", base, r.IntN(w.Scale.Products())+1)}, user)
		case pick < m.Orders+m.Products+m.PayNew:
			return w.payment(r, fmt.Sprintf("load-%s-%d-%d", w.Run, seed, seq))
		}
		return prepared[r.IntN(len(prepared))]
	}
}

// payment is a payment of a user r draws, under key.
func (w Workload) payment(r *rand.Rand, key string) load.Target {
	user := r.IntN(w.Scale.Users()) + 1
	body, _ := json.Marshal(gateway.ChargeRequest{
		UserID: int64(user), AmountCents: int64(100 + r.IntN(9900)), Currency: "EUR", Reference: key,
	})
	t := load.Target{Method: http.MethodPost, URL: strings.TrimSuffix(w.Base, "/") + "/payments", Body: bytes.Clone(body),
		Header: http.Header{"Content-Type": {"application/json"}, gateway.IdempotencyKeyHeader: {key}}}
	return withClient(t, user)
}

// withClient names the user's client in the request's X-Forwarded-For.
func withClient(t load.Target, user int) load.Target {
	if t.Header == nil {
		t.Header = http.Header{}
	}
	t.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", user>>16&255, user>>8&255, user&255))
	return t
}
