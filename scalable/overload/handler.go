package overload

import (
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
)

// NewHandler returns the shop's HTTP handler, GET /users/{id}/orders, behind
// Admit with limits: it serves what db's pool can serve in time and refuses
// the rest at once, with 503 and Retry-After.
func NewHandler(db *pgxpool.Pool, limits Limits) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}/orders", Orders(db))
	return Admit(mux, limits)
}
