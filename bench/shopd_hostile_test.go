package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/shop"
)

// Lesson 17: what a hostile or careless client sends the service, over HTTP,
// in both wirings.

// shopdPayers is how many clients send the same payment at once.
const shopdPayers = 8

func TestShopdChargesOnceForConcurrentDuplicates(t *testing.T) {
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		t.Run(name("impl", impl), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := startGateway(t)
			base, _ := startShopd(t, impl, db, gw.Client())
			body := []byte(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "order-1"}`)

			start := make(chan struct{})
			statuses := make([]int, shopdPayers)
			payments := make([]shop.Payment, shopdPayers)
			var wg sync.WaitGroup
			for i := range shopdPayers {
				wg.Go(func() {
					<-start // every client sends at once
					statuses[i] = postJSON(t, base+"/payments", "double-click", body, &payments[i])
				})
			}
			close(start)
			wg.Wait()

			require.Len(t, gw.Charges(), 1, "one key, one charge, however many clients send it")
			var charged shop.Payment
			for i, status := range statuses {
				switch status {
				case http.StatusOK:
					if charged.ID == 0 {
						charged = payments[i]
					}
					assert.Equal(t, charged, payments[i], "every success is the one payment")
				case http.StatusConflict:
					// In progress: the scalable wiring's lease.
				case http.StatusInternalServerError:
					// naive/breaker checks for the key, then charges, then
					// inserts: the clients that lost the race to insert get
					// the unique key's violation. The gateway's key kept the
					// money safe; the answer is lesson 9's naive side.
					assert.Equal(t, shopd.Naive, impl, "client %d", i)
				default:
					t.Errorf("client %d: status %d", i, status)
				}
			}
			var rows int
			require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE user_id = 5 AND idempotency_key = 'double-click'`).Scan(&rows))
			assert.Equal(t, 1, rows, "one payment recorded")
		})
	}
}

func TestShopdKeepsEachUsersIdempotencyKeys(t *testing.T) {
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		t.Run(name("impl", impl), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := startGateway(t)
			base, _ := startShopd(t, impl, db, gw.Client())

			var mine, theirs shop.Payment
			require.Equal(t, http.StatusOK, postJSON(t, base+"/payments", "order-1", []byte(`{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "order-1"}`), &mine))
			// Another user's client picks the same key (the name of its order):
			// it is their own payment, charged on its own, never the first user's.
			require.Equal(t, http.StatusOK, postJSON(t, base+"/payments", "order-1", []byte(`{"user_id": 6, "amount_cents": 999, "currency": "EUR", "reference": "order-1"}`), &theirs))
			assert.Equal(t, int64(6), theirs.UserID)
			assert.Equal(t, int64(999), theirs.AmountCents)
			assert.NotEqual(t, mine.ID, theirs.ID, "another payment")
			assert.NotEqual(t, mine.ChargeID, theirs.ChargeID, "another charge: user 6 is not given user 5's")
			charges := gw.Charges()
			require.Len(t, charges, 2, "each user charged once")
			assert.Equal(t, int64(999), charges[1].AmountCents, "user 6 charged what they asked")
		})
	}
}

func TestShopdRefusesHostileRequests(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := startGateway(t)
	naive, _ := startShopd(t, shopd.Naive, db, gw.Client())
	scalable, _ := startShopd(t, shopd.Scalable, db, gw.Client())
	heavy, _ := shop.Small.UserWithOrders(100)
	const okPayment = `{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "r"}`
	// Distinct characters: a key the index cannot compress below its limit.
	var longKey strings.Builder
	for i := range 4000 {
		longKey.WriteByte(byte('!' + i*7919%94))
	}
	keys := map[string]string{"key too long": longKey.String(), "key not text": "k\xff"}

	cases := []struct {
		name, method, path string
		body               string
		status             int
		code               string
	}{
		{"product id not a number", "GET", "/products/abc", "", 400, shopd.CodeInvalidID},
		{"product id zero", "GET", "/products/0", "", 400, shopd.CodeInvalidID},
		{"product id negative", "GET", "/products/-1", "", 400, shopd.CodeInvalidID},
		{"product id overflows", "GET", "/products/9223372036854775808", "", 400, shopd.CodeInvalidID},
		{"product id max", "GET", "/products/9223372036854775807", "", 404, shopd.CodeProductMissing},
		{"user id max", "GET", "/users/9223372036854775807/orders", "", 404, shopd.CodeUserNotFound},
		{"user id with a sign", "GET", "/users/+5/orders", "", 400, shopd.CodeInvalidID},
		{"user id in hex", "GET", "/users/0x5/orders", "", 400, shopd.CodeInvalidID},
		{"user id with a leading zero", "GET", "/users/05/orders", "", 400, shopd.CodeInvalidID},
		{"empty body", "POST", "/payments", "", 400, shopd.CodeMalformedBody},
		{"JSON array", "POST", "/payments", "[1, 2]", 400, shopd.CodeMalformedBody},
		{"wrong type", "POST", "/payments", `{"user_id": 5, "amount_cents": "1250", "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"amount overflows", "POST", "/payments", `{"user_id": 5, "amount_cents": 9223372036854775808, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"fraction of a cent", "POST", "/payments", `{"user_id": 5, "amount_cents": 12.5, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"no such method", "DELETE", "/payments", "", 404, shopd.CodeNoRoute},
		{"GET a POST route", "GET", "/payments", "", 404, shopd.CodeNoRoute},
		{"key too long", "POST", "/payments", okPayment, 400, shopd.CodeInvalidKey},
		{"key not text", "POST", "/payments", okPayment, 400, shopd.CodeInvalidKey},
		{"reference with NUL", "POST", "/payments", `{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "a\u0000b"}`, 400, shopd.CodeInvalidPayment},
		{"reference too long", "POST", "/payments", `{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "` + strings.Repeat("r", shopd.MaxReferenceBytes+1) + `"}`, 400, shopd.CodeInvalidPayment},
	}
	scalableOnly := []struct {
		name, method, path string
		body               string
		status             int
		code               string
	}{
		{"limit max int", "GET", fmt.Sprintf("/users/%d/orders?limit=9223372036854775807", heavy), "", 400, shopd.CodeInvalidPage},
		{"limit overflows", "GET", fmt.Sprintf("/users/%d/orders?limit=99999999999999999999", heavy), "", 400, shopd.CodeInvalidPage},
		{"limit a fraction", "GET", fmt.Sprintf("/users/%d/orders?limit=1.5", heavy), "", 400, shopd.CodeInvalidPage},
		{"JSON null", "POST", "/payments", "null", 400, shopd.CodeInvalidPayment},
		{"no payer", "POST", "/payments", `{"amount_cents": 1250, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeInvalidPayment},
		{"zero amount", "POST", "/payments", `{"user_id": 5, "amount_cents": 0, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeInvalidPayment},
		{"two payments in one body", "POST", "/payments", `{"user_id": 5, "amount_cents": 1, "currency": "EUR", "reference": "r"} {"user_id": 5, "amount_cents": 1, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
	}
	run := func(t *testing.T, base string, c struct {
		name, method, path string
		body               string
		status             int
		code               string
	}) {
		req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		require.NoError(t, err)
		key, ok := keys[c.name]
		if !ok {
			key = "hostile-" + c.name
		}
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var answer shopd.ErrorBody
		assert.Equal(t, c.status, decodeAnswer(t, resp, &answer))
		if c.code != "*" {
			assert.Equal(t, c.code, answer.Error.Code, "message %q", answer.Error.Message)
		}
		assert.NotEmpty(t, answer.Error.Message)
	}
	for _, c := range cases {
		t.Run("impl=naive/"+c.name, func(t *testing.T) { run(t, naive, c) })
		t.Run("impl=scalable/"+c.name, func(t *testing.T) { run(t, scalable, c) })
	}
	for _, c := range scalableOnly {
		t.Run("impl=scalable/"+c.name, func(t *testing.T) { run(t, scalable, c) })
	}
	var n int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE idempotency_key LIKE 'hostile-%'`).Scan(&n))
	assert.Zero(t, n, "no hostile request recorded a payment")
	assert.Empty(t, gw.Charges(), "no hostile request charged anything")
}
