package overload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/shop"
)

// Order is an order as GET /users/{id}/orders lists it.
type Order struct {
	ID        int64     `json:"id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// Orders returns the handler of GET /users/{id}/orders: the user's ten latest
// orders, newest first, as JSON. An id that is not a number gets 400; a user
// who does not exist, 404; every request, 500 without a database (db nil).
// It is the same on both sides of the lesson, which changes what stands in
// front of it, not the handler; a test keeps the two files identical
// (bench/overload, TestOrdersHandlerIsTheSameOnBothSides).
func Orders(db *pgxpool.Pool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("user id %q is not a number", r.PathValue("id")))
			return
		}
		orders, err := recentOrders(r.Context(), db, userID)
		switch {
		case errors.Is(err, shop.ErrUserNotFound):
			writeError(w, http.StatusNotFound, err.Error())
		case r.Context().Err() != nil:
			// The client has gone: nobody reads an answer.
		case err != nil:
			writeError(w, http.StatusInternalServerError, err.Error())
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(orders)
		}
	})
}

// recentOrders returns the user's ten latest orders, or an error wrapping
// shop.ErrUserNotFound if there is no such user, or shop.ErrInvalidConfig
// if there is no database.
func recentOrders(ctx context.Context, db *pgxpool.Pool, userID int64) ([]Order, error) {
	if db == nil {
		return nil, fmt.Errorf("orders of user %d: no database: %w", userID, shop.ErrInvalidConfig)
	}
	if userID <= 0 {
		return nil, fmt.Errorf("orders of user %d: %w", userID, shop.ErrUserNotFound)
	}
	// orders_user_id_created_at_idx: the user's orders, newest first. The
	// user's row comes along, so an unknown user is no row at all and a user
	// with no orders is one row of NULLs, in one round trip.
	const recentOrders = `
		SELECT o.id, o.status, o.created_at FROM users u
		LEFT JOIN LATERAL (
			SELECT id, status, created_at FROM orders
			WHERE user_id = u.id ORDER BY created_at DESC, id DESC LIMIT 10
		) o ON true
		WHERE u.id = $1
		ORDER BY o.created_at DESC, o.id DESC`
	rows, err := db.Query(ctx, recentOrders, userID)
	if err != nil {
		return nil, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	orders := []Order{}
	found := false
	var id *int64
	var status *string
	var createdAt *time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &status, &createdAt}, func() error {
		found = true
		if id != nil {
			orders = append(orders, Order{ID: *id, Status: *status, CreatedAt: *createdAt})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("orders of user %d: %w", userID, err)
	}
	if !found {
		return nil, fmt.Errorf("orders of user %d: %w", userID, shop.ErrUserNotFound)
	}
	return orders, nil
}

// writeError answers with status and a JSON body {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
