// Package capstone is lesson 17's exercise: the handler of
// GET /users/{id}/orders, as cmd/shopd's naive wiring serves it.
//
// Exercise: OrdersHandler answers with every order the user ever placed,
// in 2+N queries; for the user with 10,000 orders, megabytes and seconds.
// Make it answer a page instead: at most ?limit= orders (20 when absent;
// 400 for a limit that is not a number from 1 to shop.MaxPageSize), newest
// first, with a next_cursor that the client sends back as ?cursor= for the
// next page, in a few queries whatever the user's history. Check with:
//
//	go test -tags exercise -run '^TestExercise17$' ./bench/capstone
//
// The check pages the orders of the user with 1,000, counting the round
// trips and the rows each page costs, and places an order between two
// pages: the next page must go on where the first ended.
package capstone

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/internal/shopd"
	"works-vs-scales/naive/nplusone"
	"works-vs-scales/shop"
)

// OrdersHandler returns the handler of GET /users/{id}/orders on db: the
// user and their orders as JSON, in the shape of shopd.OrdersPage.
func OrdersHandler(db *pgxpool.Pool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}/orders", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			http.Error(w, "not a user id", http.StatusBadRequest)
			return
		}
		uo, err := nplusone.GetUserOrders(r.Context(), db, id)
		if errors.Is(err, shop.ErrUserNotFound) {
			http.Error(w, "no such user", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(shopd.OrdersPage{User: uo.User, Orders: uo.Orders})
	})
	return mux
}
