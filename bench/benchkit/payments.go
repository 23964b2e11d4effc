package benchkit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Payer is what the keyed payment paths of lessons 9 and 10 do: pay once per
// key.
type Payer interface {
	Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error)
}

// NewPayerFunc makes a Payer on db charging through gw, failing tb if it
// refuses the configuration.
type NewPayerFunc func(tb testing.TB, db *pgxpool.Pool, gw *gateway.Client) Payer

// StartGateway starts a payment gateway for one test, stopped at its end.
func StartGateway(tb testing.TB) *gatewaytest.Server {
	gw := gatewaytest.Start()
	tb.Cleanup(gw.Close)
	return gw
}

// PaymentFor returns the charge of payment number i: a user of the small shop
// and a reference of its own.
func PaymentFor(i int) gateway.ChargeRequest {
	return gateway.ChargeRequest{UserID: int64(i%100 + 1), AmountCents: int64(1000 + i), Currency: "EUR", Reference: fmt.Sprintf("order-%d", i)}
}

// PaymentStatuses returns how many payments db holds in each status.
func PaymentStatuses(tb testing.TB, db *pgxpool.Pool) map[string]int {
	tb.Helper()
	rows, err := db.Query(context.Background(), "SELECT status, count(*) FROM payments GROUP BY status")
	if err != nil {
		tb.Fatalf("count payments: %v", err)
	}
	defer rows.Close()
	statuses := make(map[string]int)
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			tb.Fatalf("count payments: %v", err)
		}
		statuses[status] = n
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("count payments: %v", err)
	}
	return statuses
}

// ExpiredLeaseIsTakenOver checks a keyed payment path against two pending
// claims another process left: one whose lease is live (answered
// shop.ErrInProgress), one whose lease expired after it charged (taken over
// and reconciled with that charge, not charged again).
func ExpiredLeaseIsTakenOver(t *testing.T, newPayments func(*pgxpool.Pool, *gateway.Client) Payer) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := StartGateway(t)
	payments := newPayments(db, gw.Client())
	ctx := context.Background()
	// A process claimed "crashed" and charged it, then died before recording;
	// another holds "alive", within its lease.
	charge, err := gw.Client().Charge(ctx, PaymentFor(1), "crashed")
	require.NoError(t, err)
	const stranded = `
		INSERT INTO payments (idempotency_key, user_id, amount_cents, currency, status, lease_owner, lease_expires_at)
		VALUES ($1, $2, $3, $4, 'pending', 'another process', now() + $5::interval)`
	_, err = db.Exec(ctx, stranded, "crashed", PaymentFor(1).UserID, PaymentFor(1).AmountCents, PaymentFor(1).Currency, "-1 second")
	require.NoError(t, err)
	_, err = db.Exec(ctx, stranded, "alive", PaymentFor(2).UserID, PaymentFor(2).AmountCents, PaymentFor(2).Currency, "1 hour")
	require.NoError(t, err)

	_, err = payments.Pay(ctx, "alive", PaymentFor(2))
	assert.ErrorIs(t, err, shop.ErrInProgress, "a live lease is its owner's")
	payment, err := payments.Pay(ctx, "crashed", PaymentFor(1))
	require.NoError(t, err, "an expired lease is taken over, not trusted for ever")
	assert.Equal(t, charge.ID, payment.ChargeID, "and reconciled with the charge the dead process made")
	assert.Len(t, gw.Charges(), 1, "without charging again")
	assert.Equal(t, map[string]int{shop.PaymentCharged: 1, shop.PaymentPending: 1}, PaymentStatuses(t, db))
}

// PaymentKeysBelongToTheirUser checks a keyed payment path: one user's key
// is that user's own, so another user's payment under the same key is a
// payment of its own, not the first user's answered again; the same key for a
// different payment of the same user is refused, and so is no key.
func PaymentKeysBelongToTheirUser(t *testing.T, newPayments NewPayerFunc) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := StartGateway(t)
	payments := newPayments(t, db, gw.Client())
	ctx := context.Background()
	first := gateway.ChargeRequest{UserID: 5, AmountCents: 1000, Currency: "EUR", Reference: "order-5"}
	other := gateway.ChargeRequest{UserID: 6, AmountCents: 777, Currency: "USD", Reference: "order-6"}

	paid5, err := payments.Pay(ctx, "k1", first)
	require.NoError(t, err)
	paid6, err := payments.Pay(ctx, "k1", other)
	require.NoError(t, err, "user 6's k1 is user 6's own key")
	assert.EqualValues(t, 6, paid6.UserID, "not user 5's payment")
	assert.EqualValues(t, 777, paid6.AmountCents)
	assert.NotEqual(t, paid5.ChargeID, paid6.ChargeID, "a charge of its own")
	require.Len(t, gw.Charges(), 2)
	assert.EqualValues(t, 6, gw.Charges()[1].UserID, "the gateway charged user 6, not user 5's charge again")

	again, err := payments.Pay(ctx, "k1", first)
	require.NoError(t, err, "the same request again")
	assert.Equal(t, paid5.ChargeID, again.ChargeID)

	_, err = payments.Pay(ctx, "k1", gateway.ChargeRequest{UserID: 5, AmountCents: 777, Currency: "USD", Reference: "order-5"})
	assert.ErrorIs(t, err, shop.ErrKeyReused, "user 5's k1 for a different payment")
	_, err = payments.Pay(ctx, "", first)
	assert.ErrorIs(t, err, shop.ErrNoIdempotencyKey)
	assert.Len(t, gw.Charges(), 2, "neither refused call charged")
	assert.Equal(t, 2, PaymentStatuses(t, db)[shop.PaymentCharged])
}

// PayForAnUnknownUserIsUserNotFound checks a keyed payment path that looks
// the user up before it charges: an unknown user is shop.ErrUserNotFound, and
// nobody is charged.
func PayForAnUnknownUserIsUserNotFound(t *testing.T, newPayments NewPayerFunc) {
	db := pgtest.ShopClone(t, shop.Small)
	gw := StartGateway(t)
	for _, userID := range []int64{1 << 40, -1, 0} {
		req := gateway.ChargeRequest{UserID: userID, AmountCents: 1000, Currency: "EUR", Reference: "order-1"}
		_, err := newPayments(t, db, gw.Client()).Pay(context.Background(), "k", req)
		assert.ErrorIs(t, err, shop.ErrUserNotFound, "user %d", userID)
	}
	assert.Empty(t, gw.Charges(), "no one charged")
}

// ReleaseWhenAllArrived releases gw's held charges once each of callers has
// arrived at the gateway (held there) or returned, as returned counts them;
// so that no caller is charged before every other has got as far as it
// goes. A caller that waits inside the code under test, on a lock the test
// cannot see, never arrives: once nothing has changed for settle, the charges
// are released anyway.
func ReleaseWhenAllArrived(gw *gatewaytest.Server, callers int, returned func() int, settle time.Duration) {
	last, since := -1, time.Now()
	for {
		arrived := gw.Held() + returned()
		if arrived >= callers {
			break
		}
		if arrived != last {
			last, since = arrived, time.Now()
		} else if time.Since(since) > settle {
			break
		}
		time.Sleep(time.Millisecond)
	}
	gw.Release()
}
