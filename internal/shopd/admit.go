package shopd

import (
	"context"
	"fmt"
	"net/http"

	observe "works-vs-scales/scalable/observability"
	"works-vs-scales/scalable/overload"
)

// The codes of the requests admission control refuses.
const (
	CodeOverloaded  = "overloaded"
	CodeRateLimited = "rate_limited"
)

// admit returns next behind admission (lesson 16): served at once, queued
// briefly, or refused at once with 503 and Retry-After (429 for a client
// above its rate), its turns shared with the other handlers admission
// admits to. The refusals are answered in the service's error shape
// (ErrorBody) rather than Admit's own, so that a client reads every error of
// the service one way, and marked as sheds for the metrics (observe.Shed):
// the service protecting itself, not failing.
func admit(next http.Handler, admission *overload.Admission) (http.Handler, error) {
	inner, err := admission.Admit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := r.Context().Value(refusalKey{}).(*refusalWriter)
		rw.admitted = true
		next.ServeHTTP(rw.ResponseWriter, r)
	}))
	if err != nil {
		return nil, fmt.Errorf("shopd: admission control: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &refusalWriter{ResponseWriter: w, ctx: r.Context()}
		inner.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), refusalKey{}, rw)))
	}), nil
}

// refusalKey keys a request's refusalWriter in its context.
type refusalKey struct{}

// refusalWriter passes an admitted request's answer through, and rewrites
// a refusal's body into an ErrorBody, keeping its status and Retry-After.
type refusalWriter struct {
	http.ResponseWriter
	ctx                context.Context // the request's, to mark a refusal shed
	admitted, answered bool
}

func (w *refusalWriter) WriteHeader(code int) {
	if w.admitted {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.answered = true
	observe.Shed(w.ctx)
	detail := ErrorDetail{Code: CodeOverloaded, Message: "the service is at capacity: try again after Retry-After seconds"}
	if code == http.StatusTooManyRequests {
		detail = ErrorDetail{Code: CodeRateLimited, Message: "too many requests from this client: try again after Retry-After seconds"}
	}
	writeJSON(w.ResponseWriter, code, ErrorBody{Error: detail})
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if w.admitted {
		return w.ResponseWriter.Write(b)
	}
	if !w.answered {
		w.WriteHeader(http.StatusOK)
	}
	return len(b), nil // the refusal's own body: replaced by WriteHeader's
}
