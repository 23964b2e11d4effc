package overload

import (
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// NewHandler returns the shop's HTTP handler, GET /users/{id}/orders, behind
// Admit with limits: it serves what db's pool can serve in time and refuses
// the rest at once, with 503 and Retry-After. No database, or limits that
// Limits.Validate refuses, is an error wrapping shop.ErrInvalidConfig.
func NewHandler(db *pgxpool.Pool, limits Limits) (http.Handler, error) {
	if db == nil {
		return nil, fmt.Errorf("orders handler with no database: %w", shop.ErrInvalidConfig)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}/orders", Orders(db))
	return Admit(mux, limits)
}
