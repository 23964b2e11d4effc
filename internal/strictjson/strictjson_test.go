package strictjson_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/strictjson"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

func TestUnmarshalAcceptsWhatEncodingJSONWrites(t *testing.T) {
	phone := "+41 44 000 00 00"
	want := shop.UserOrders{
		User: shop.User{ID: 5, Name: "Ada", Email: "ada@example.com", Phone: &phone, CreatedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		Orders: []shop.Order{{ID: 9, UserID: 5, Status: "paid", CreatedAt: time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC),
			Items: []shop.OrderItem{{LineNo: 1, Product: shop.Product{ID: 3, Name: "Mug", Category: "kitchen", PriceCents: 1250}, Quantity: 2, PriceCents: 1200}}}},
	}
	data, err := json.Marshal(want)
	require.NoError(t, err)
	var got shop.UserOrders
	require.NoError(t, strictjson.Unmarshal(data, &got))
	assert.Equal(t, want, got)

	// A null pointer, an embedded struct's members, whitespace around.
	var feed shop.FeedPostWithComments
	require.NoError(t, strictjson.Unmarshal([]byte(` {"post": {"id": 1}, "author": {"phone": null}, "comment_count": 2, "latest_comments": []} `+"\n"), &feed))
	assert.Equal(t, int64(2), feed.CommentCount)
	assert.Nil(t, feed.Author.Phone)

	// Members of a map or an interface may be named anything, once.
	var anything map[string]any
	require.NoError(t, strictjson.Unmarshal([]byte(`{"A": {"b": [1, {"C": null}]}, "a": 2}`), &anything))
}

func TestUnmarshalRefusesWhatEncodingJSONLetsThrough(t *testing.T) {
	for name, c := range map[string]struct {
		json string
		says string
	}{
		"a member twice":                 {`{"user_id": 5, "amount_cents": 1, "amount_cents": 999999}`, `"amount_cents" twice`},
		"a member twice, once escaped":   {`{"amount_cents": 1, "amount\u005fcents": 999999}`, `"amount_cents" twice`},
		"a member in another case":       {`{"user_id": 5, "Amount_Cents": 1}`, `unknown member "Amount_Cents" (did you mean "amount_cents"?)`},
		"the Go name of a tagged field":  {`{"UserID": 5}`, `unknown member "UserID"`},
		"an unknown member":              {`{"user_id": 5, "admin": true}`, `unknown member "admin"`},
		"a null for a number":            {`{"user_id": 5, "amount_cents": null}`, `"amount_cents": null: want an integer`},
		"a null for the object":          {`null`, `null: want an object`},
		"a string for a number":          {`{"amount_cents": "1250"}`, `"amount_cents": a JSON string: want an integer`},
		"a fraction for an integer":      {`{"amount_cents": 12.5}`, `"amount_cents": a JSON number 12.5: want an integer`},
		"an integer past int64":          {`{"amount_cents": 9223372036854775808}`, `"amount_cents": a JSON number 9223372036854775808: want an integer`},
		"an array for the object":        {`[1, 2]`, `a JSON array: want an object`},
		"two values":                     {`{"user_id": 5} {"user_id": 6}`, "more than one JSON value"},
		"something after the value":      {`{"user_id": 5} junk`, "more than one JSON value"},
		"nothing":                        {``, "no JSON value"},
		"whitespace alone":               {" \n\t", "no JSON value"},
		"not JSON":                       {`{"user_id": 5,`, ""},
		"invalid UTF-8 in a string":      {"{\"reference\": \"caf\xe9\"}", "not UTF-8"},
		"a lone surrogate is UTF-8 JSON": {`{"reference": "\ud800"}`, "*ok*"},
		"an unknown member, nested deep": {`{"reference": "r", "x": ` + strings.Repeat("[", strictjson.MaxDepth+1) + strings.Repeat("]", strictjson.MaxDepth+1) + `}`, `unknown member "x"`},
	} {
		t.Run(name, func(t *testing.T) {
			var req gateway.ChargeRequest
			err := strictjson.Unmarshal([]byte(c.json), &req)
			if c.says == "*ok*" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, strictjson.ErrInvalid)
			assert.Contains(t, err.Error(), c.says)
		})
	}
	t.Run("nested deeper than allowed", func(t *testing.T) {
		var anything any
		deep := strings.Repeat("[", strictjson.MaxDepth+1) + strings.Repeat("]", strictjson.MaxDepth+1)
		err := strictjson.Unmarshal([]byte(deep), &anything)
		require.ErrorIs(t, err, strictjson.ErrInvalid)
		assert.Contains(t, err.Error(), "nested more than")
		require.NoError(t, strictjson.Unmarshal([]byte(deep[1:len(deep)-1]), &anything), "MaxDepth deep is fine")
	})
	t.Run("a member twice, deep inside", func(t *testing.T) {
		var orders shop.UserOrders
		err := strictjson.Unmarshal([]byte(`{"orders": [{"id": 1}, {"id": 2, "items": [{"quantity": 1, "quantity": 9}]}]}`), &orders)
		require.ErrorIs(t, err, strictjson.ErrInvalid)
		assert.Contains(t, err.Error(), `"orders[1].items[0].quantity" twice`)
	})
	t.Run("the message quotes little of the input", func(t *testing.T) {
		var req gateway.ChargeRequest
		err := strictjson.Unmarshal([]byte(`{"`+strings.Repeat("x", 100_000)+`": 1}`), &req)
		require.ErrorIs(t, err, strictjson.ErrInvalid)
		assert.Less(t, len(err.Error()), 200)
	})
	t.Run("not a pointer", func(t *testing.T) {
		var req gateway.ChargeRequest
		err := strictjson.Unmarshal([]byte(`{}`), req)
		require.Error(t, err)
		assert.NotErrorIs(t, err, strictjson.ErrInvalid, "the caller's mistake, not the input's")
	})
}

// TestUnmarshalLeavesNothingHalfDecoded: a refused value changes nothing
// of what it was to be decoded into.
func TestUnmarshalLeavesNothingHalfDecoded(t *testing.T) {
	req := gateway.ChargeRequest{UserID: 1, AmountCents: 2, Currency: "EUR", Reference: "r"}
	before := req
	require.Error(t, strictjson.Unmarshal([]byte(`{"user_id": 7, "amount_cents": 3, "AMOUNT_CENTS": 4}`), &req))
	assert.Equal(t, before, req)
}
