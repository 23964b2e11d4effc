package shopd

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	naivecaching "works-vs-scales/naive/caching"
	scalablecaching "works-vs-scales/scalable/caching"
	breaker "works-vs-scales/scalable/circuitbreaker"
	"works-vs-scales/scalable/validation"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// ErrorBody is the JSON of every error the service answers, in both wirings:
//
//	{"error": {"code": "invalid_page", "message": "...", "fields": [...]}}
//
// Code is stable, for programs; Message is for people and may change. Fields
// lists, for a request with wrong fields, each field and why.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is what went wrong; see ErrorBody.
type ErrorDetail struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

// FieldError says which field of a request was wrong, and why.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// The codes of ErrorDetail.
const (
	CodeInvalidID      = "invalid_id"
	CodeInvalidPage    = "invalid_page"
	CodeMalformedBody  = "malformed_body"
	CodeMediaType      = "unsupported_media_type"
	CodeBodyTooLarge   = "body_too_large"
	CodeInvalidPayment = "invalid_payment"
	CodeNoKey          = "no_idempotency_key"
	CodeInvalidKey     = "invalid_idempotency_key"
	CodeKeyReused      = "idempotency_key_reused"
	CodeInProgress     = "payment_in_progress"
	CodePaymentFailed  = "payment_failed"
	CodeUserNotFound   = "user_not_found"
	CodeProductMissing = "product_not_found"
	CodeDeadline       = "deadline_exceeded"
	CodeGatewayOpen    = "gateway_unavailable"
	CodeUnavailable    = "unavailable"
	CodeInternal       = "internal"
	CodeNoRoute        = "no_route"
	CodeWrongMethod    = "method_not_allowed"
)

// errBadID is a path id that is not a positive integer.
var errBadID = errors.New("not a positive integer id")

// errMalformedBody is a request body that is not the JSON asked for.
var errMalformedBody = errors.New("malformed JSON body")

// errMediaType is a request body the scalable wiring does not read: not
// declared application/json (UTF-8), or encoded (gzip).
var errMediaType = errors.New("want a body of Content-Type application/json")

// errPaymentFailed is a payment key whose payment failed earlier: refused,
// nothing charged.
var errPaymentFailed = errors.New("the payment failed, and nothing was charged")

// errBadKey is an Idempotency-Key the service does not store: see checkPaymentText.
var errBadKey = errors.New("not an idempotency key")

// errBadReference is a payment's reference the service does not store: see
// checkPaymentText.
var errBadReference = errors.New("not a payment reference")

// status maps an error of the lessons' packages to the HTTP status and code
// the client gets. Errors the client caused are 4xx and say what was wrong;
// the rest are 5xx, and say nothing of the inside.
func status(err error) (int, ErrorDetail) {
	var tooLarge *http.MaxBytesError
	var invalid *validation.ValidationError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, ErrorDetail{Code: CodeBodyTooLarge, Message: err.Error()}
	case errors.Is(err, errBadID):
		return http.StatusBadRequest, ErrorDetail{Code: CodeInvalidID, Message: err.Error()}
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType, ErrorDetail{Code: CodeMediaType, Message: err.Error()}
	case errors.Is(err, errMalformedBody):
		return http.StatusBadRequest, ErrorDetail{Code: CodeMalformedBody, Message: err.Error()}
	case errors.Is(err, shop.ErrInvalidPage):
		return http.StatusBadRequest, ErrorDetail{Code: CodeInvalidPage, Message: err.Error()}
	case errors.As(err, &invalid):
		return http.StatusBadRequest, ErrorDetail{Code: CodeInvalidPayment, Message: err.Error(), Fields: fieldErrors(err)}
	case errors.Is(err, errBadKey):
		return http.StatusBadRequest, ErrorDetail{Code: CodeInvalidKey, Message: err.Error()}
	case errors.Is(err, errBadReference):
		return http.StatusBadRequest, ErrorDetail{Code: CodeInvalidPayment, Message: err.Error(), Fields: []FieldError{{Field: "reference", Reason: errBadReference.Error()}}}
	case errors.Is(err, shop.ErrNoIdempotencyKey):
		return http.StatusBadRequest, ErrorDetail{Code: CodeNoKey, Message: err.Error()}
	case errors.Is(err, shop.ErrKeyReused):
		return http.StatusUnprocessableEntity, ErrorDetail{Code: CodeKeyReused, Message: err.Error()}
	case errors.Is(err, shop.ErrInProgress):
		return http.StatusConflict, ErrorDetail{Code: CodeInProgress, Message: err.Error()}
	case errors.Is(err, shop.ErrDeclined), errors.Is(err, errPaymentFailed):
		// Declined by the gateway (the scalable wiring; the naive one's
		// gateway errors are 500s), or the key's payment failed before.
		return http.StatusPaymentRequired, ErrorDetail{Code: CodePaymentFailed,
			Message: "the payment was declined, and nothing was charged: pay again with a new Idempotency-Key"}
	case errors.Is(err, shop.ErrUserNotFound):
		return http.StatusNotFound, ErrorDetail{Code: CodeUserNotFound, Message: err.Error()}
	case errors.Is(err, naivecaching.ErrProductNotFound), errors.Is(err, scalablecaching.ErrProductNotFound), errors.Is(err, shop.ErrProductNotFound):
		return http.StatusNotFound, ErrorDetail{Code: CodeProductMissing, Message: err.Error()}
	case errors.Is(err, breaker.ErrOpen):
		return http.StatusServiceUnavailable, ErrorDetail{Code: CodeGatewayOpen, Message: "the payment gateway is unavailable"}
	case errors.Is(err, context.DeadlineExceeded):
		// Pool exhaustion too: a request that waited its deadline for a
		// connection gets pgxpool's context.DeadlineExceeded.
		return http.StatusServiceUnavailable, ErrorDetail{Code: CodeDeadline, Message: "the request took longer than its deadline"}
	case unavailable(err):
		return http.StatusServiceUnavailable, ErrorDetail{Code: CodeUnavailable, Message: "a service this request needs is unavailable: try again after Retry-After seconds"}
	default:
		return http.StatusInternalServerError, ErrorDetail{Code: CodeInternal, Message: "internal error"}
	}
}

// unavailable reports whether err says that a service the request needs,
// the database or the payment gateway, is down, restarting or out of reach,
// rather than that the request is wrong: a connection refused, reset or
// closed (the database restarted, a proxy or a load balancer dropped it),
// PostgreSQL shutting down or starting (SQLSTATE 57P01–57P03, 57P05), a
// connection failure (class 08), too many connections (53300), or the
// gateway's own outage (gateway.IsOutage: a 5xx, 408 or 429 after the
// tries). The same request may pass later: the answer is 503 with
// Retry-After, not 500.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		return strings.HasPrefix(code, "08") || code == "53300" ||
			code == "57P01" || code == "57P02" || code == "57P03" || code == "57P05"
	}
	// A connection's failure is a net.Error (refused, reset), io.EOF or
	// io.ErrUnexpectedEOF (closed), or pgx's closed connection, wrapped as
	// the database's or the gateway's client returns it; gateway.IsOutage
	// reads the transport's errors, whoever's they are.
	return errors.Is(err, pgconn.ErrConnClosed) || gateway.IsOutage(err)
}

// jsonFields names validation's fields as a payment's JSON names them.
var jsonFields = map[string]string{"user id": "user_id", "amount": "amount_cents", "currency": "currency"}

// fieldErrors lists every *validation.ValidationError joined in err, each
// named as the request's JSON names it.
func fieldErrors(err error) []FieldError {
	var fields []FieldError
	var walk func(error)
	walk = func(err error) {
		if v, ok := err.(*validation.ValidationError); ok {
			field := v.Field
			if name, ok := jsonFields[field]; ok {
				field = name
			}
			fields = append(fields, FieldError{Field: field, Reason: v.Err.Error()})
			return
		}
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return fields
}

// writeError answers err as JSON, with the status it maps to; an internal
// error is logged, since its body says nothing (a request past its deadline
// is counted by the metrics, not logged one by one: under overload, a log
// line per request would add to the load). A request its client gave up on
// gets no answer: nobody is left to read it.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	code, detail := status(err)
	if code == http.StatusInternalServerError {
		slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	if code == http.StatusServiceUnavailable || code == http.StatusConflict {
		// An outage, or a payment another call is making: the same request
		// may pass in a moment.
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, ErrorBody{Error: detail})
}

// writeJSON answers v as JSON with the status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// An error here is the client gone: nothing left to tell it.
	_ = json.NewEncoder(w).Encode(v)
}

// routes serves mux's routes, and answers a path no route has with 404 and a
// route asked with another method with 405 and its Allow header, both in the
// service's error shape rather than the mux's plain text.
func routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No pattern matched: the mux's answer is a 404, a 405 or a
		// redirect to the clean path. Keep a redirect; rewrite the others.
		rec := &headerRecorder{header: make(http.Header)}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: CodeWrongMethod,
				Message: r.Method + " is not allowed on " + shop.Quote(r.URL.Path) + "; allowed: " + rec.header.Get("Allow")}})
		case http.StatusNotFound:
			writeJSON(w, http.StatusNotFound, ErrorBody{Error: ErrorDetail{Code: CodeNoRoute, Message: "no route for " + r.Method + " " + shop.Quote(r.URL.Path)}})
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// headerRecorder keeps the status and headers a handler writes, and drops its body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header { return h.header }

func (h *headerRecorder) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *headerRecorder) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return len(b), nil
}
