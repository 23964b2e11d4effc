package capstone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	exercise "works-vs-scales/exercises/capstone"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/shopd"
	naivenplusone "works-vs-scales/naive/nplusone"
	scalablenplusone "works-vs-scales/scalable/nplusone"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// Lesson 17's exercise, in exercises/capstone: a handler that pages a user's
// orders. Its check is here, with the proof that it fails on the starting point
// and on the wrong answer the lesson warns about (paging the JSON, not the
// query), and passes on cmd/shopd's scalable wiring; the trainee's run of it,
// TestExercise17, is in exercise_test.go, behind the exercise tag.

// exercise17MaxRoundTrips is the most round trips a page may cost: the user,
// the page, and one to spare.
const exercise17MaxRoundTrips = 3

// checkExercise17 says what is still wrong with an answer to lesson 17's
// exercise, or nil when it is done. It calls the handler in process, with a
// context that counts the queries it sends.
func checkExercise17(t *testing.T, newHandler func(db *pgxpool.Pool) http.Handler) error {
	db := pgtest.Shop(t, shop.Small)
	h := newHandler(db)
	ctx := context.Background()
	heavy, _ := shop.Small.UserWithOrders(1000)
	want, err := scalablenplusone.GetUserOrders(ctx, db, heavy)
	if err != nil {
		return fmt.Errorf("the orders of user %d: %w", heavy, err)
	}

	get := func(path string) (int, shopd.OrdersPage, int64, error) {
		countCtx, counts := pgtest.CountQueries(ctx)
		req := httptest.NewRequestWithContext(countCtx, http.MethodGet, path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var page shopd.OrdersPage
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				return rec.Code, page, 0, fmt.Errorf("GET %s: the answer is not an OrdersPage: %w", path, err)
			}
		}
		return rec.Code, page, counts.RoundTrips(), nil
	}
	checkPage := func(path string, from, n int) (string, error) {
		code, page, trips, err := get(path)
		switch {
		case err != nil:
			return "", err
		case code != http.StatusOK:
			return "", fmt.Errorf("GET %s: status %d, want 200", path, code)
		case !cmp.Equal(page.User, want.User):
			// A diff: %+v would print the phone, a *string, as an address.
			return "", fmt.Errorf("GET %s: the user is not the user's row (-want +got):\n%s", path, cmp.Diff(want.User, page.User))
		case len(page.Orders) != n:
			return "", fmt.Errorf("GET %s: %d orders, want a page of %d (the user has %d)", path, len(page.Orders), n, len(want.Orders))
		case !cmp.Equal(page.Orders, want.Orders[from:from+n]):
			return "", fmt.Errorf("GET %s: not orders %d to %d of the user's, newest first", path, from+1, from+n)
		case trips > exercise17MaxRoundTrips:
			return "", fmt.Errorf("GET %s: %d round trips to the database for a page of %d orders, want at most %d whatever the user's history", path, trips, n, exercise17MaxRoundTrips)
		case page.NextCursor == "":
			return "", fmt.Errorf("GET %s: no next_cursor, and the user has more orders", path)
		}
		return page.NextCursor, nil
	}

	base := fmt.Sprintf("/users/%d/orders", heavy)
	next, err := checkPage(base, 0, shopd.DefaultPageSize)
	if err != nil {
		return err
	}
	if _, err := checkPage(base+"?limit=50&cursor="+url.QueryEscape(next), shopd.DefaultPageSize, 50); err != nil {
		return fmt.Errorf("the second page: %w", err)
	}
	bad := []struct {
		path string
		code int
	}{
		{base + "?limit=-1", http.StatusBadRequest},
		{base + "?limit=0", http.StatusBadRequest},
		{base + "?limit=" + strconv.Itoa(shop.MaxPageSize+1), http.StatusBadRequest},
		{base + "?limit=ten", http.StatusBadRequest},
		{base + "?cursor=not-a-cursor", http.StatusBadRequest},
		{"/users/abc/orders", http.StatusBadRequest},
		{fmt.Sprintf("/users/%d/orders", shop.Small.Users()+1), http.StatusNotFound},
	}
	for _, b := range bad {
		code, _, _, err := get(b.path)
		if err != nil {
			return err
		}
		if code != b.code {
			return fmt.Errorf("GET %s: status %d, want %d", b.path, code, b.code)
		}
	}
	return nil
}

// scalableOrdersHandler is the reference answer: cmd/shopd's scalable wiring.
func scalableOrdersHandler(t *testing.T) func(db *pgxpool.Pool) http.Handler {
	return func(db *pgxpool.Pool) http.Handler {
		var svc *shopd.Service
		t.Cleanup(func() {
			if svc != nil {
				svc.Close()
			}
		})
		// No payment is made: a gateway nobody listens on will do.
		svc, err := shopd.New(context.Background(), shopd.Config{Impl: shopd.Scalable, DB: db.Config(), Gateway: &gateway.Client{URL: "http://127.0.0.1:9"}, CursorKey: shopdCursorKey})
		require.NoError(t, err)
		return svc.Handler()
	}
}

// slicedOrdersHandler is the wrong answer lesson 17 warns about: the JSON is
// paged, the query is not. It loads every order, 2+N queries, and answers
// limit of them after the index in the cursor.
func slicedOrdersHandler(db *pgxpool.Pool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}/orders", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			http.Error(w, "not a user id", http.StatusBadRequest)
			return
		}
		limit, from := shopd.DefaultPageSize, 0
		if s := r.URL.Query().Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || shop.CheckPageSize(limit) != nil {
				http.Error(w, "bad limit", http.StatusBadRequest)
				return
			}
		}
		if s := r.URL.Query().Get("cursor"); s != "" {
			if from, err = strconv.Atoi(s); err != nil || from < 0 {
				http.Error(w, "bad cursor", http.StatusBadRequest)
				return
			}
		}
		uo, err := naivenplusone.GetUserOrders(r.Context(), db, id)
		if errors.Is(err, shop.ErrUserNotFound) {
			http.Error(w, "no such user", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		page := shopd.OrdersPage{User: uo.User, Orders: uo.Orders[min(from, len(uo.Orders)):min(from+limit, len(uo.Orders))]}
		if from+limit < len(uo.Orders) {
			page.NextCursor = strconv.Itoa(from + limit)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(page)
	})
	return mux
}

func TestExercise17CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise17(t, exercise.OrdersHandler)
	require.ErrorContains(t, err, "1000 orders, want a page of 20")
}

func TestExercise17CheckFailsOnPagingTheJSON(t *testing.T) {
	err := checkExercise17(t, slicedOrdersHandler)
	require.ErrorContains(t, err, "1002 round trips to the database for a page of 20 orders")
}

func TestExercise17CheckPassesOnTheScalableWiring(t *testing.T) {
	require.NoError(t, checkExercise17(t, scalableOrdersHandler(t)))
}
