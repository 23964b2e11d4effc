// Package gateway is the shop's client of its payment gateway, an HTTP service
// that charges a user's card (lessons 9–10).
//
// A Client makes exactly one HTTP request per call: retrying, breaking the
// circuit and queueing are the callers' business, and the lessons' subject.
// [gatewaytest] serves the same API in a test process, failing on command.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"works-vs-scales/shop"
)

// ChargeRequest is what the gateway is asked to charge.
type ChargeRequest struct {
	UserID      int64  `json:"user_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Reference   string `json:"reference"` // the shop's name for what is paid, e.g. "order-42"; shown on statements
}

// Charge is money the gateway took.
type Charge struct {
	ID string `json:"id"`
	ChargeRequest
}

// IdempotencyKeyHeader names the header that makes a charge idempotent: the
// gateway charges once per key and answers a repeated key with the first
// charge.
//
// The gateway's keys are the shop's, shared by all its users, while a shop's
// key is one user's name for one payment: the header carries [ScopedKey].
const IdempotencyKeyHeader = "Idempotency-Key"

// ScopedKey returns the gateway's key for userID's idempotency key: the user
// and the key, so that two users' keys never name the same charge.
func ScopedKey(userID int64, key string) string {
	return strconv.FormatInt(userID, 10) + ":" + key
}

// Error is a reply of the gateway that is not a charge.
type Error struct {
	StatusCode int
	RetryAfter time.Duration // from the Retry-After header; 0 if none
	Message    string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("gateway: %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return msg
}

// Client calls the gateway at URL.
type Client struct {
	URL  string
	HTTP *http.Client // http.DefaultClient if nil: no timeout but the context's
}

// Charge asks the gateway to charge req, once: with the [ScopedKey] of
// req.UserID and idempotencyKey, unless idempotencyKey is empty. Any reply but 201 or 200 is an [*Error]; a failure to get a reply is
// the transport's error, wrapped.
func (c *Client) Charge(ctx context.Context, req ChargeRequest, idempotencyKey string) (Charge, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Charge{}, fmt.Errorf("gateway: encode %+v: %w", req, err)
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/charges", bytes.NewReader(body))
	if err != nil {
		return Charge{}, fmt.Errorf("gateway: charge request: %w", err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		httpReq.Header.Set(IdempotencyKeyHeader, ScopedKey(req.UserID, idempotencyKey))
	}
	charge, err := c.do(httpReq)
	if err != nil {
		return Charge{}, fmt.Errorf("gateway: charge user %d: %w", req.UserID, err)
	}
	return charge, nil
}

// ErrNoCharge is returned by [Client.ChargeByKey] when the gateway made no
// charge under the key.
var ErrNoCharge = errors.New("gateway: no charge under this key")

// ChargeByKey asks the gateway what happened to userID's idempotency key: it
// returns the charge made under the key, or [ErrNoCharge]. It never charges,
// so it may be asked as often as needed: it is how a payment whose reply was
// lost is reconciled. Any other reply but 200 is an [*Error].
func (c *Client) ChargeByKey(ctx context.Context, userID int64, idempotencyKey string) (Charge, error) {
	query := url.Values{"idempotency_key": {ScopedKey(userID, idempotencyKey)}}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/charges?"+query.Encode(), nil)
	if err != nil {
		return Charge{}, fmt.Errorf("gateway: charge request: %w", err)
	}
	charge, err := c.do(httpReq)
	var gwErr *Error
	if errors.As(err, &gwErr) && gwErr.StatusCode == http.StatusNotFound {
		return Charge{}, fmt.Errorf("user %d, key %s: %w", userID, shop.Quote(idempotencyKey), ErrNoCharge)
	}
	if err != nil {
		return Charge{}, fmt.Errorf("gateway: the charge of user %d's key %s: %w", userID, shop.Quote(idempotencyKey), err)
	}
	return charge, nil
}

// do sends httpReq and reads the charge it answers with: any reply but 201 or
// 200 is an [*Error]; a failure to get a reply is the transport's error.
func (c *Client) do(httpReq *http.Request) (Charge, error) {
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(httpReq)
	if err != nil {
		return Charge{}, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Charge{}, fmt.Errorf("read the reply: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return Charge{}, &Error{
			StatusCode: resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After")),
			Message:    string(bytes.TrimSpace(reply)),
		}
	}
	var charge Charge
	if err := json.Unmarshal(reply, &charge); err != nil {
		return Charge{}, fmt.Errorf("decode %s: %w", shop.Quote(string(reply)), err)
	}
	return charge, nil
}

// parseRetryAfter reads a Retry-After header given in seconds (the form this
// gateway sends); an HTTP date or nonsense counts as no header.
func parseRetryAfter(header string) time.Duration {
	seconds, err := strconv.Atoi(header)
	if err != nil || seconds < 0 {
		return 0
	}
	return time.Duration(seconds) * time.Second
}

// IsClientError reports whether err is the gateway refusing the request itself
// (a 4xx other than 408 and 429): sending it again gets the same answer.
func IsClientError(err error) bool {
	var gwErr *Error
	return errors.As(err, &gwErr) && gwErr.StatusCode >= 400 && gwErr.StatusCode < 500 && !busy(gwErr.StatusCode)
}

// IsOutage reports whether err says the gateway is down, overwhelmed or out of
// reach, so that the same request may pass later: a 5xx, a 408 or 429, a
// timeout, a connection refused, reset or closed (EOF, EPIPE). A call its
// caller cancelled says nothing about the gateway, and a client error says it
// works: both are false.
//
// It is the one reading of a failed call: retry's IsTransient retries what it
// says, and the breakers count what it says, so they never disagree.
func IsOutage(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var gwErr *Error
	if errors.As(err, &gwErr) {
		return gwErr.StatusCode >= 500 || busy(gwErr.StatusCode)
	}
	var netErr net.Error // syscall.Errno is one: ECONNRESET, ECONNREFUSED, EPIPE
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// busy reports whether a 4xx status says the gateway could not take the
// request now, rather than refusing it: 408 and 429.
func busy(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}
