package overload

import (
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
)

// NewHandler returns the shop's HTTP handler: GET /users/{id}/orders.
//
// net/http serves each request in a goroutine of its own, as soon as it
// arrives, and each waits for a connection of db's pool for as long as its
// client waits: past the pool's capacity, requests queue without bound, and
// the ones served have waited longest.
func NewHandler(db *pgxpool.Pool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}/orders", Orders(db))
	return mux
}
