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
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
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
// context that counts the queries it sends and the rows they return, for the
// user with 1,000 orders: the first page, then an order placed, then the next
// page, which must go on where the first ended.
func checkExercise17(t *testing.T, newHandler func(db *pgxpool.Pool) http.Handler) error {
	db := pgtest.ShopClone(t, shop.Small)
	h := newHandler(db)
	ctx := context.Background()
	heavy, _ := shop.Small.UserWithOrders(1000)
	want, err := scalablenplusone.GetUserOrders(ctx, db, heavy)
	if err != nil {
		return fmt.Errorf("the orders of user %d: %w", heavy, err)
	}

	get := func(path string) (int, shopd.OrdersPage, *pgtest.Counts, error) {
		countCtx, counts := pgtest.CountQueries(ctx)
		req := httptest.NewRequestWithContext(countCtx, http.MethodGet, path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var page shopd.OrdersPage
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				return rec.Code, page, counts, fmt.Errorf("GET %s: the answer is not an OrdersPage: %w", path, err)
			}
		}
		return rec.Code, page, counts, nil
	}
	checkPage := func(path string, from, n int) (string, error) {
		code, page, counts, err := get(path)
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
		case from > 0 && cmp.Equal(page.Orders[0], want.Orders[from-1]):
			return "", fmt.Errorf("GET %s: the page starts with order %d, the last of the page before, again: one order was placed between the two pages, "+
				"and the page moved back one place with it. A cursor that counts places (an OFFSET, an index into the list) counts from the newest "+
				"order, and the newest changes; say where the page ended instead, with the last order's (created_at, id) (lesson 2's keyset, "+
				"lesson 17's \"The scales version\")", path, want.Orders[from-1].ID)
		case !cmp.Equal(page.Orders, want.Orders[from:from+n]):
			return "", fmt.Errorf("GET %s: not orders %d to %d of the user's, newest first", path, from+1, from+n)
		case counts.RoundTrips() > exercise17MaxRoundTrips:
			return "", fmt.Errorf("GET %s: %d round trips to the database for a page of %d orders, want at most %d whatever the user's history",
				path, counts.RoundTrips(), n, exercise17MaxRoundTrips)
		case page.NextCursor == "":
			return "", fmt.Errorf("GET %s: no next_cursor, and the user has more orders", path)
		}
		// The user's row, the page's orders and one more, and their items:
		// each a row of its own, or together, as a JOIN returns them.
		pageRows := int64(1 + n + 1)
		for _, o := range want.Orders[from : from+n+1] {
			pageRows += int64(len(o.Items))
		}
		if counts.Rows() > 2*pageRows {
			return "", fmt.Errorf("GET %s: your queries returned %d rows for a page of %d orders, whose user, orders and items (and the next order's) are %d rows; "+
				"the user has %d orders: the database still reads and sends every one of them, and the page costs what the whole history costs. "+
				"Ask the database for the page alone (lesson 17, \"Why it breaks\")", path, counts.Rows(), n, pageRows, len(want.Orders))
		}
		return page.NextCursor, nil
	}

	base := fmt.Sprintf("/users/%d/orders", heavy)
	next, err := checkPage(base, 0, shopd.DefaultPageSize)
	if err != nil {
		return err
	}
	// A new order for the user between the pages, as one arrives while a
	// client pages: the newest, so the next page is unchanged by it.
	const placeOrder = `WITH placed AS (
			INSERT INTO orders (user_id, status, created_at)
			SELECT $1, 'pending', max(created_at) + interval '1 second' FROM orders WHERE user_id = $1
			RETURNING id)
		INSERT INTO order_items (order_id, line_no, product_id, quantity, price_cents)
		SELECT placed.id, 1, p.id, 1, p.price_cents FROM placed, products p WHERE p.id = 1`
	if _, err := db.Exec(ctx, placeOrder, heavy); err != nil {
		return fmt.Errorf("place an order for user %d between the pages: %w", heavy, err)
	}
	if _, err := checkPage(base+"?limit=50&cursor="+url.QueryEscape(next), shopd.DefaultPageSize, 50); err != nil {
		return fmt.Errorf("the second page, after an order was placed: %w", err)
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
		cfg := shopd.Config{Impl: shopd.Scalable, DB: db.Config(), Gateway: &gateway.Client{URL: "http://127.0.0.1:9"}, CursorKey: shopdCursorKey}
		benchkit.SkipAboveBudget(t, shopd.Conns(cfg)) // a room's budget (WORKSHOP_MAX_CONNS)
		svc, err := shopd.New(context.Background(), cfg)
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

func TestExercise17CheckFailsOnAnOffsetCursor(t *testing.T) {
	err := checkExercise17(t, offsetOrdersHandler)
	require.ErrorContains(t, err, "the second page, after an order was placed")
	require.ErrorContains(t, err, "the last of the page before, again")
	t.Log(err)
}

func TestExercise17CheckFailsOnEveryOrderInOneJoin(t *testing.T) {
	err := checkExercise17(t, joinedOrdersHandler)
	require.ErrorContains(t, err, "rows for a page of 20 orders")
	require.ErrorContains(t, err, "the database still reads and sends every one of them")
	t.Log(err)
}

func TestExercise17CheckPassesOnTheScalableWiring(t *testing.T) {
	require.NoError(t, checkExercise17(t, scalableOrdersHandler(t)))
}

// pageFunc returns up to limit+1 of the user's orders, newest first, from
// the offset from: one more than the page says whether there is a next.
type pageFunc func(ctx context.Context, db *pgxpool.Pool, userID int64, from, limit int) ([]shop.Order, error)

// pagedOrdersHandler serves GET /users/{id}/orders as the wrong answers below
// do: the user's row, then the page from pageOf, with a plain integer as the
// cursor, the offset of the next page.
func pagedOrdersHandler(db *pgxpool.Pool, pageOf pageFunc) http.Handler {
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
		var page shopd.OrdersPage
		const userQuery = `SELECT id, name, email, phone, created_at FROM users WHERE id = $1`
		err = db.QueryRow(r.Context(), userQuery, id).Scan(&page.User.ID, &page.User.Name, &page.User.Email, &page.User.Phone, &page.User.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			http.Error(w, "no such user", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		if page.Orders, err = pageOf(r.Context(), db, id, from, limit); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		if len(page.Orders) > limit {
			page.Orders, page.NextCursor = page.Orders[:limit], strconv.Itoa(from+limit)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(page)
	})
	return mux
}

// offsetOrdersHandler is a wrong answer lesson 17 warns about: the page is
// asked of the database, LIMIT and OFFSET, in one query, and its cursor is
// the next page's offset. Two round trips and a page of rows; but an order
// placed between two pages moves every order one place, and the next page
// starts one place early.
func offsetOrdersHandler(db *pgxpool.Pool) http.Handler {
	return pagedOrdersHandler(db, func(ctx context.Context, db *pgxpool.Pool, userID int64, from, limit int) ([]shop.Order, error) {
		const pageQuery = `WITH page AS (
				SELECT id, user_id, status, created_at FROM orders WHERE user_id = $1
				ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3)
			SELECT o.id, o.user_id, o.status, o.created_at,
				i.line_no, i.quantity, i.price_cents, p.id, p.name, p.category, p.price_cents
			FROM page o LEFT JOIN order_items i ON i.order_id = o.id LEFT JOIN products p ON p.id = i.product_id
			ORDER BY o.created_at DESC, o.id DESC, i.line_no`
		rows, err := db.Query(ctx, pageQuery, userID, limit+1, from)
		if err != nil {
			return nil, err
		}
		return collectOrders(rows)
	})
}

// joinedOrdersHandler is the other: every order of the user with its items,
// in one JOIN, and the page sliced out in Go. Two round trips, and the right
// page, at the cost of the whole history, read and sent by the database for
// every page.
func joinedOrdersHandler(db *pgxpool.Pool) http.Handler {
	return pagedOrdersHandler(db, func(ctx context.Context, db *pgxpool.Pool, userID int64, from, limit int) ([]shop.Order, error) {
		const everyOrder = `SELECT o.id, o.user_id, o.status, o.created_at,
				i.line_no, i.quantity, i.price_cents, p.id, p.name, p.category, p.price_cents
			FROM orders o LEFT JOIN order_items i ON i.order_id = o.id LEFT JOIN products p ON p.id = i.product_id
			WHERE o.user_id = $1
			ORDER BY o.created_at DESC, o.id DESC, i.line_no`
		rows, err := db.Query(ctx, everyOrder, userID)
		if err != nil {
			return nil, err
		}
		orders, err := collectOrders(rows)
		if err != nil {
			return nil, err
		}
		return orders[min(from, len(orders)):min(from+limit+1, len(orders))], nil
	})
}

// collectOrders reads orders joined with their items and products, an order's
// rows together and its items in line order, as scalable/pagination does.
func collectOrders(rows pgx.Rows) ([]shop.Order, error) {
	defer rows.Close()
	orders := []shop.Order{}
	for rows.Next() {
		var o shop.Order
		var lineNo, quantity *int32
		var price, productID, productPrice *int64
		var productName, category *string
		if err := rows.Scan(&o.ID, &o.UserID, &o.Status, &o.CreatedAt,
			&lineNo, &quantity, &price, &productID, &productName, &category, &productPrice); err != nil {
			return nil, err
		}
		if n := len(orders); n == 0 || orders[n-1].ID != o.ID {
			o.Items = []shop.OrderItem{}
			orders = append(orders, o)
		}
		if lineNo == nil {
			continue // an order without items
		}
		last := &orders[len(orders)-1]
		last.Items = append(last.Items, shop.OrderItem{LineNo: *lineNo, Quantity: *quantity, PriceCents: *price,
			Product: shop.Product{ID: *productID, Name: *productName, Category: *category, PriceCents: *productPrice}})
	}
	return orders, rows.Err()
}
