package shopd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	naivecaching "works-vs-scales/naive/caching"
	naivebreaker "works-vs-scales/naive/circuitbreaker"
	"works-vs-scales/naive/nplusone"
	scalablenplusone "works-vs-scales/scalable/nplusone"
	"works-vs-scales/scalable/pagination"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// NaivePaymentTimeout is how long the naive wiring gives each try of a
// charge: naive/circuitbreaker tries three times.
const NaivePaymentTimeout = 2 * time.Second

// OrdersPage is the JSON of GET /users/{id}/orders: the user, their orders
// newest first with their items, and, in the scalable wiring, the token of
// the next page ("" or absent after the last).
type OrdersPage struct {
	User       shop.User    `json:"user"`
	Orders     []shop.Order `json:"orders"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// naive is the wiring a first version writes: one pool, the naive packages,
// no deadline but the client's.
type naive struct {
	impl     string
	db       *pgxpool.Pool
	products *naivecaching.Products
	payments *naivebreaker.Payments
	cursors  *pagination.CursorCodec // the Page wiring's
}

func newNaive(ctx context.Context, cfg Config) (*Service, error) {
	var cursors *pagination.CursorCodec
	if cfg.Impl == Page {
		var err error
		if cursors, err = pagination.NewCursorCodec(cfg.CursorKey); err != nil {
			return nil, fmt.Errorf("shopd: %w", err)
		}
	}
	db, err := pgxpool.NewWithConfig(ctx, cfg.DB.Copy())
	if err != nil {
		return nil, fmt.Errorf("shopd: open the pool: %w", err)
	}
	payments, err := naivebreaker.NewPayments(db, cfg.Gateway, NaivePaymentTimeout)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("shopd: %w", err)
	}
	products, err := naivecaching.NewProducts(db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("shopd: %w", err)
	}
	n := &naive{impl: cfg.Impl, db: db, products: products, payments: payments, cursors: cursors}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}/orders", n.orders)
	mux.HandleFunc("GET /products/{id}", n.product)
	mux.HandleFunc("POST /payments", n.pay)
	return &Service{impl: cfg.Impl, handler: routes(mux), pools: []*pgxpool.Pool{db}, close: []func(){db.Close}}, nil
}

// orders serves the user's orders: naive/nplusone, 2+N queries for every
// order of the user (the Join wiring: scalable/nplusone, one query). With
// ?limit=N it answers the newest N, the page the other wirings answer, but
// still reads every order first and drops the rest: the page is equal, the
// work is not. The cursor is not read: there are no next pages, but in the
// Page wiring.
func (n *naive) orders(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if n.impl == Page {
		n.page(w, r, id)
		return
	}
	limit, err := limitOnly(r, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	getUserOrders := nplusone.GetUserOrders
	if n.impl == Join {
		getUserOrders = scalablenplusone.GetUserOrders // lesson 1's fix alone
	}
	uo, err := getUserOrders(r.Context(), n.db, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if limit > 0 && len(uo.Orders) > limit {
		uo.Orders = uo.Orders[:limit]
	}
	writeJSON(w, http.StatusOK, OrdersPage{User: uo.User, Orders: nonNil(uo.Orders)})
}

// limitOnly returns the page size ?limit= asks for, 0 when it asks none, or
// an error wrapping shop.ErrInvalidPage for one out of range, as the paging
// wirings refuse it.
func limitOnly(r *http.Request, userID int64) (int, error) {
	text := r.URL.Query().Get("limit")
	if text == "" {
		return 0, nil
	}
	limit, err := strconv.Atoi(text)
	if err != nil {
		return 0, fmt.Errorf("orders of user %d: limit %s: not a number: %w", userID, shop.Quote(text), shop.ErrInvalidPage)
	}
	if err := shop.CheckPageSize(limit); err != nil {
		return 0, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	return limit, nil
}

// page serves a page of the user's orders as the scalable wiring does
// (lesson 2's keyset, two queries whatever the user's history), and nothing
// else of it: the one pool, no deadline but the client's.
func (n *naive) page(w http.ResponseWriter, r *http.Request, id int64) {
	limit, after, err := pageRequest(r, n.cursors, id, shop.MaxPageSize)
	if err != nil {
		writeError(w, r, err)
		return
	}
	user, err := userByID(r.Context(), n.db, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	orders, next, err := pagination.ListUserOrdersAfter(r.Context(), n.db, id, after, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	page := OrdersPage{User: user, Orders: nonNil(orders)}
	if next != nil {
		page.NextCursor = n.cursors.Encode(*next)
	}
	writeJSON(w, http.StatusOK, page)
}

// product serves a product from the database, every time.
func (n *naive) product(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	p, err := n.products.Get(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// pay charges the payment the body asks for, once per Idempotency-Key, with
// naive/circuitbreaker: three tries, no breaker.
func (n *naive) pay(w http.ResponseWriter, r *http.Request) {
	var req gateway.ChargeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, r, fmt.Errorf("payment: %w: %w", errMalformedBody, err))
		return
	}
	key := r.Header.Get(gateway.IdempotencyKeyHeader)
	if err := checkPaymentText(key, req.Reference); err != nil {
		writeError(w, r, err)
		return
	}
	p, err := n.payments.Pay(r.Context(), key, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// The longest Idempotency-Key and payment reference both wirings accept.
const (
	MaxIdempotencyKeyBytes = 255
	MaxReferenceBytes      = 255
)

// checkPaymentText refuses, with an error wrapping errBadKey or
// errBadReference, a non-empty key that is longer than
// MaxIdempotencyKeyBytes or holds anything but printable ASCII, and a
// reference that is longer than MaxReferenceBytes, is not UTF-8 or holds a
// control character: text PostgreSQL would not store (a NUL, bytes that are
// not UTF-8) or not index (an entry over its size limit). Both wirings call
// it before the gateway, so neither charges a payment for its key or its
// reference and then fails to store it. It checks those two texts and
// nothing else: the naive wiring still charges a payment whose other fields
// PostgreSQL refuses (a user who does not exist, a NUL in the currency) and
// then answers 500 with no row, the money taken and unrecorded (lesson 17's
// hostile corpus counts them); the scalable wiring's validation refuses
// those before the gateway. (An empty key is the payments packages' to
// refuse.)
func checkPaymentText(key, reference string) error {
	if len(key) > MaxIdempotencyKeyBytes {
		return fmt.Errorf("Idempotency-Key of %d bytes: want at most %d: %w", len(key), MaxIdempotencyKeyBytes, errBadKey)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' || key[i] > '~' {
			return fmt.Errorf("Idempotency-Key %s: want printable ASCII: %w", shop.Quote(key), errBadKey)
		}
	}
	if len(reference) > MaxReferenceBytes {
		return fmt.Errorf("reference of %d bytes: want at most %d: %w", len(reference), MaxReferenceBytes, errBadReference)
	}
	if !utf8.ValidString(reference) || strings.IndexFunc(reference, unicode.IsControl) >= 0 {
		return fmt.Errorf("reference %s: want text without control characters: %w", shop.Quote(reference), errBadReference)
	}
	return nil
}

// pathID returns the path value name as a positive id, or an error wrapping
// errBadID. The id is decimal digits alone: "+5" or "05" is not user 5, so
// that one resource has one URL.
func pathID(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != s {
		return 0, fmt.Errorf("%s %s: %w", name, shop.Quote(s), errBadID)
	}
	return id, nil
}

// nonNil returns orders, or an empty list for nil: a user without orders
// gets [], not null.
func nonNil(orders []shop.Order) []shop.Order {
	if orders == nil {
		return []shop.Order{}
	}
	return orders
}
