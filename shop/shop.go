// Package shop is the example domain every lesson works on: users who place
// orders of products, and a small social feed of posts and comments.
//
// The data is generated, never downloaded: the same Scale and seed give the same
// rows on every machine, so a result measured here can be measured again there.
//
// Every type a client or a cache may see as JSON names its fields one way,
// in snake_case (user_id, amount_cents, created_at): the json tags are part
// of the type, so that no encoder falls back to the Go names.
package shop

import (
	"errors"
	"strings"
	"time"
)

// User is a customer of the shop.
type User struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	// Phone is the user's phone number, or nil when they gave none (NULL in
	// the database, null in JSON, not an empty string).
	Phone     *string   `json:"phone"`
	CreatedAt time.Time `json:"created_at"`
}

// Product is something the shop sells.
type Product struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Category   string `json:"category"`
	PriceCents int64  `json:"price_cents"`
}

// Order is one purchase by a user, with its items in line order.
type Order struct {
	ID        int64       `json:"id"`
	UserID    int64       `json:"user_id"`
	Status    string      `json:"status"`
	CreatedAt time.Time   `json:"created_at"`
	Items     []OrderItem `json:"items"`
}

// OrderItem is one line of an order: a product, how many, and the price paid
// for one, which may differ from the product's price today.
type OrderItem struct {
	LineNo     int32   `json:"line_no"`
	Product    Product `json:"product"`
	Quantity   int32   `json:"quantity"`
	PriceCents int64   `json:"price_cents"`
}

// UserOrders is a user with all of their orders, newest first.
type UserOrders struct {
	User   User    `json:"user"`
	Orders []Order `json:"orders"`
}

// Post is an entry in the feed.
type Post struct {
	ID        int64     `json:"id"`
	AuthorID  int64     `json:"author_id"`
	Title     string    `json:"title"`
	CreatedAt time.Time `json:"created_at"`
}

// FeedPost is a post as the feed shows it: with its author and how many
// comments it has.
type FeedPost struct {
	Post         Post  `json:"post"`
	Author       User  `json:"author"`
	CommentCount int64 `json:"comment_count"`
}

// Payment is a payment the shop took or is taking (lessons 8–10): an amount
// in cents of its currency, and where it stands.
type Payment struct {
	ID          int64  `json:"id"`
	UserID      int64  `json:"user_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Status      string `json:"status"`    // pending, charged, failed, unknown or queued
	ChargeID    string `json:"charge_id"` // the gateway's id of the charge, once charged
}

// The states of a payment.
const (
	PaymentPending = "pending" // the charge is being made
	PaymentCharged = "charged"
	PaymentFailed  = "failed"  // the gateway refused, or made no charge under the key
	PaymentUnknown = "unknown" // the gateway may have charged: to reconcile by key
	PaymentQueued  = "queued"  // in the outbox, to charge when the gateway is back
)

// PaymentRequest is a payment as a client sent it: every field as typed, not
// yet checked.
type PaymentRequest struct {
	UserID   string `json:"user_id"`
	Amount   string `json:"amount"`   // in units of the currency, e.g. "12.50"
	Currency string `json:"currency"` // an ISO 4217 code, e.g. "EUR"
}

// ErrUserNotFound is returned when no user has the requested id.
var ErrUserNotFound = errors.New("user not found")

// The errors of a payment's idempotency key (lessons 9–10). A key is the
// client's name for one payment of one user: two users' keys never collide.
var (
	// ErrNoIdempotencyKey is returned for a payment without a key: it could
	// not be told apart from its own retry.
	ErrNoIdempotencyKey = errors.New("no idempotency key")
	// ErrKeyReused is returned for a key its user already used for a
	// different payment.
	ErrKeyReused = errors.New("the key was used for a different payment")
	// ErrInProgress is returned for a key whose payment another call is
	// making.
	ErrInProgress = errors.New("a payment with this key is in progress")
)

// ErrDeclined is returned for a payment the gateway refused (a declined
// card, an amount or a currency it does not take): nothing was charged, and
// the same payment would be refused again.
var ErrDeclined = errors.New("the payment was declined")

// ErrInvalidConfig is returned when a component is made with configuration
// that makes no sense, such as zero attempts or a negative timeout.
var ErrInvalidConfig = errors.New("invalid configuration")

// Comment is a reply to a post.
type Comment struct {
	ID        int64     `json:"id"`
	PostID    int64     `json:"post_id"`
	AuthorID  int64     `json:"author_id"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// FeedPostWithComments is a feed post with its latest comments, newest first.
type FeedPostWithComments struct {
	FeedPost
	LatestComments []Comment `json:"latest_comments"`
}

// OrdersPage is one page of a list of orders, and how many orders the whole
// list holds.
type OrdersPage struct {
	Orders []Order `json:"orders"`
	Total  int64   `json:"total"`
}

// NormalizeEmail returns the form of an email address under which two
// addresses are the same customer: trimmed and lower-cased.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// A Key is what two records are matched by when only Equal may say whether
// they are the same: its type need not be comparable with ==, so a key is not
// a map's key itself. Hash returns the same number for equal keys, and may
// return it for different ones too, as any hash may: a map files keys under
// their hash, and Equal tells apart the keys filed together.
type Key[K any] interface {
	Equal(other K) bool
	Hash() uint64
}

// ProductSales is what a product sold: in how many orders, how many units,
// for how much.
type ProductSales struct {
	Orders       int64 `json:"orders"`
	Units        int64 `json:"units"`
	RevenueCents int64 `json:"revenue_cents"`
}

// BestSeller is a product and the units of it sold.
type BestSeller struct {
	ProductID int64 `json:"product_id"`
	Units     int64 `json:"units"`
}
