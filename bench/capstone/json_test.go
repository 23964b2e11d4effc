package capstone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/shop"
)

// Lesson 17: one JSON convention in every request, answer and error, and
// payments read strictly. This file keeps its helpers to itself.

// jsonMembers returns the names of every member of every object in the JSON
// document, however deep, sorted and once each.
func jsonMembers(tb testing.TB, body []byte) []string {
	tb.Helper()
	var doc any
	require.NoError(tb, json.Unmarshal(body, &doc), "answer %s", body)
	seen := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for name, inner := range v {
				seen[name] = true
				walk(inner)
			}
		case []any:
			for _, inner := range v {
				walk(inner)
			}
		}
	}
	walk(doc)
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func TestShopdAnswersInSnakeCase(t *testing.T) {
	for _, impl := range []string{shopd.Naive, shopd.Scalable} {
		t.Run(benchkit.Name("impl", impl), func(t *testing.T) {
			db := pgtest.ShopClone(t, shop.Small)
			gw := benchkit.StartGateway(t)
			base, _ := startShopd(t, impl, db, gw.Client())
			user, _ := shop.Small.UserWithOrders(10)
			answers := map[string]opsAnswer{
				"orders":   opsDo(t, nil, "GET", fmt.Sprintf("%s/users/%d/orders?limit=5", base, user), "", nil),
				"product":  opsDo(t, nil, "GET", base+"/products/7", "", nil),
				"payment":  opsDo(t, nil, "POST", base+"/payments", "snake-1", opsPayment("order-1")),
				"error":    opsDo(t, nil, "GET", base+"/users/0/orders", "", nil),
				"no route": opsDo(t, nil, "GET", base+"/nowhere", "", nil),
			}
			want := map[string][]string{
				"product": {"category", "id", "name", "price_cents"},
				"payment": {"amount_cents", "charge_id", "currency", "id", "status", "user_id"},
				"error":   {"code", "error", "message"},
				"orders": {"category", "created_at", "email", "id", "items", "line_no", "name", "orders", "phone",
					"price_cents", "product", "quantity", "status", "user", "user_id"},
			}
			if impl == shopd.Scalable {
				want["orders"] = append(want["orders"], "next_cursor")
				slices.Sort(want["orders"])
			}
			for what, a := range answers {
				members := jsonMembers(t, a.body)
				for _, name := range members {
					assert.Regexp(t, snakeCase, name, "%s: a member not in snake_case", what)
				}
				if w, ok := want[what]; ok {
					assert.Equal(t, w, members, "%s: %s", what, a.body)
				}
			}
		})
	}
}

func TestShopdNamesTheWrongFieldsAsTheRequestDoes(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	base, _ := startShopd(t, shopd.Scalable, db, gw.Client())
	a := opsDo(t, nil, "POST", base+"/payments", "fields-1", []byte(`{"user_id": 0, "amount_cents": -5, "currency": "eur", "reference": "r"}`))
	require.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
	var answer shopd.ErrorBody
	require.NoError(t, json.Unmarshal(a.body, &answer))
	var fields []string
	for _, f := range answer.Error.Fields {
		fields = append(fields, f.Field)
	}
	assert.Equal(t, []string{"user_id", "amount_cents", "currency"}, fields, "each field named as the request's JSON names it")
}

func TestShopdReadsPaymentsStrictly(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	base, _ := startShopd(t, shopd.Scalable, db, gw.Client())
	const ok = `{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "r"}`
	for _, c := range []struct {
		name   string
		header http.Header // besides the Idempotency-Key
		body   string
		status int
		code   string
	}{
		{"a member twice", nil, `{"user_id": 5, "amount_cents": 1, "amount_cents": 999999, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"a member twice, the second escaped", nil, `{"user_id": 5, "amount_cents": 1, "amount\u005fcents": 999999, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"a member in another case", nil, `{"user_id": 5, "Amount_Cents": 1250, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"every member upper case", nil, `{"USER_ID": 5, "AMOUNT_CENTS": 1250, "CURRENCY": "EUR", "REFERENCE": "r"}`, 400, shopd.CodeMalformedBody},
		{"the Go names", nil, `{"UserID": 5, "AmountCents": 1250, "Currency": "EUR", "Reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"a null amount", nil, `{"user_id": 5, "amount_cents": null, "currency": "EUR", "reference": "r"}`, 400, shopd.CodeMalformedBody},
		{"invalid UTF-8", nil, "{\"user_id\": 5, \"amount_cents\": 1250, \"currency\": \"EUR\", \"reference\": \"caf\xe9\"}", 400, shopd.CodeMalformedBody},
		{"no Content-Type", http.Header{"Content-Type": nil}, ok, 415, shopd.CodeMediaType},
		{"text/plain", http.Header{"Content-Type": {"text/plain"}}, ok, 415, shopd.CodeMediaType},
		{"a form", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "user_id=5&amount_cents=1250&currency=EUR", 415, shopd.CodeMediaType},
		{"JSON in Latin-1", http.Header{"Content-Type": {"application/json; charset=iso-8859-1"}}, ok, 415, shopd.CodeMediaType},
		{"a parameter", http.Header{"Content-Type": {"application/json; version=2"}}, ok, 415, shopd.CodeMediaType},
		{"not a media type", http.Header{"Content-Type": {"application/json;;;="}}, ok, 415, shopd.CodeMediaType},
		{"two Content-Types", http.Header{"Content-Type": {"application/json", "text/plain"}}, ok, 415, shopd.CodeMediaType},
		{"gzip", http.Header{"Content-Encoding": {"gzip"}}, ok, 415, shopd.CodeMediaType},
		{"two Idempotency-Keys", http.Header{"Idempotency-Key": {"strict-a", "strict-b"}}, ok, 400, shopd.CodeInvalidKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", base+"/payments", strings.NewReader(c.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "strict-"+c.name)
			for name, values := range c.header {
				req.Header[name] = values
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var answer shopd.ErrorBody
			assert.Equal(t, c.status, decodeAnswer(t, resp, &answer))
			assert.Equal(t, c.code, answer.Error.Code, "message %q", answer.Error.Message)
			assert.LessOrEqual(t, len(answer.Error.Message), 400, "the message does not echo the input")
		})
	}
	assert.Empty(t, gw.Charges(), "nothing charged")
	var rows int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE idempotency_key LIKE 'strict-%'`).Scan(&rows))
	assert.Zero(t, rows, "nothing recorded")

	// What the refusals are not: JSON declared in any case of its name and
	// with its charset is read.
	for i, contentType := range []string{"application/json; charset=UTF-8", "Application/JSON"} {
		a := opsDoHeader(t, base+"/payments", fmt.Sprintf("strict-ok-%d", i), contentType, []byte(ok))
		assert.Equal(t, http.StatusOK, a.status, "Content-Type %q: %s", contentType, a.body)
	}
	assert.Len(t, gw.Charges(), 2)
}

// opsDoHeader POSTs body with the key and the Content-Type.
func opsDoHeader(tb testing.TB, url, key, contentType string, body []byte) opsAnswer {
	tb.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return opsAnswer{status: resp.StatusCode, header: resp.Header, body: raw}
}

// TestShopdDeclinedPaymentIsA402: a payment the gateway declines is
// answered 402 payment_failed in the service's error shape, recorded
// failed, charged nothing; its key answers the same from then on, without
// asking the gateway again.
func TestShopdDeclinedPaymentIsA402(t *testing.T) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := benchkit.StartGateway(t)
	gw.Decline(1250)
	base, _ := startShopd(t, shopd.Scalable, db, gw.Client())
	for i := range 2 {
		a := opsDo(t, nil, "POST", base+"/payments", "declined-1", opsPayment("order-1"))
		assert.Equal(t, http.StatusPaymentRequired, a.status, "try %d: %s", i, a.body)
		assert.Equal(t, shopd.CodePaymentFailed, a.code(), "try %d", i)
	}
	assert.EqualValues(t, 1, gw.Requests(), "the key's second call is answered from its row")
	assert.Empty(t, gw.Charges(), "nothing charged")
	status, chargeID := opsPaymentRow(t, db, "declined-1")
	assert.Equal(t, shop.PaymentFailed, status)
	assert.Empty(t, chargeID)

	// Another amount, a new key: charged as ever.
	a := opsDo(t, nil, "POST", base+"/payments", "declined-2", []byte(`{"user_id": 5, "amount_cents": 1300, "currency": "EUR", "reference": "order-1"}`))
	assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Len(t, gw.Charges(), 1)
}
