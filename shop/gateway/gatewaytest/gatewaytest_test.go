package gatewaytest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"works-vs-scales/shop/gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var coffee = gateway.ChargeRequest{UserID: 7, AmountCents: 450, Currency: "EUR", Reference: "order-1"}

func TestGatewayChargesOncePerIdempotencyKey(t *testing.T) {
	gw := Start()
	defer gw.Close()
	client := gw.Client()
	first, err := client.Charge(context.Background(), coffee, "key-1")
	require.NoError(t, err)
	again, err := client.Charge(context.Background(), coffee, "key-1")
	require.NoError(t, err)
	assert.Equal(t, first, again, "a repeated key returns the first charge")
	_, err = client.Charge(context.Background(), coffee, "")
	require.NoError(t, err)
	assert.Len(t, gw.Charges(), 2)
	assert.Equal(t, 1, gw.Duplicates(), "the charge without a key took the money again")
	assert.EqualValues(t, 3, gw.Requests())
}

func TestGatewayFailsOnCommand(t *testing.T) {
	gw := Start()
	defer gw.Close()
	client := gw.Client()
	gw.FailNext(
		Failure{Status: http.StatusServiceUnavailable, RetryAfter: 2 * time.Second},
		Failure{Status: http.StatusBadRequest},
		Failure{Reset: true, AfterCharge: true},
	)

	_, err := client.Charge(context.Background(), coffee, "a")
	var gwErr *gateway.Error
	require.ErrorAs(t, err, &gwErr)
	assert.Equal(t, http.StatusServiceUnavailable, gwErr.StatusCode)
	assert.Equal(t, 2*time.Second, gwErr.RetryAfter)
	assert.False(t, gateway.IsClientError(err))

	_, err = client.Charge(context.Background(), coffee, "b")
	require.ErrorAs(t, err, &gwErr)
	assert.Equal(t, http.StatusBadRequest, gwErr.StatusCode)
	assert.True(t, gateway.IsClientError(err))

	_, err = client.Charge(context.Background(), coffee, "")
	require.Error(t, err, "the connection closes without a reply")
	assert.NotErrorAs(t, err, &gwErr)
	assert.Len(t, gw.Charges(), 1, "the charge was made before the reply was lost")

	_, err = client.Charge(context.Background(), coffee, "c")
	require.NoError(t, err, "the failures were used up")
}

func TestGatewayHangsUntilTheClientGivesUp(t *testing.T) {
	gw := Start()
	defer gw.Close()
	gw.SetFaults(Faults{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := gw.Client().Charge(ctx, coffee, "")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	gw.SetFaults(Faults{})
	_, err = gw.Client().Charge(context.Background(), coffee, "")
	require.NoError(t, err, "healthy again")
}

func TestGatewayFailureRateIsSeeded(t *testing.T) {
	failures := func() int {
		gw := Start()
		defer gw.Close()
		gw.SetFaults(Faults{FailureRate: 0.3})
		failed := 0
		for range 100 {
			if _, err := gw.Client().Charge(context.Background(), coffee, ""); err != nil {
				failed++
			}
		}
		return failed
	}
	first := failures()
	assert.InDelta(t, 30, first, 12, "about 30%% of 100 requests fail")
	assert.Equal(t, first, failures(), "the same seed fails the same requests")
}

func TestGatewayTellsWhatHappenedToAKey(t *testing.T) {
	gw := Start()
	defer gw.Close()
	client := gw.Client()
	gw.FailNext(Failure{Status: http.StatusInternalServerError, AfterCharge: true})
	_, err := client.Charge(context.Background(), coffee, "lost")
	require.Error(t, err, "charged, and the reply lost")

	found, err := client.ChargeByKey(context.Background(), coffee.UserID, "lost")
	require.NoError(t, err)
	assert.Equal(t, gw.Charges()[0], found, "the charge made under the key")

	_, err = client.ChargeByKey(context.Background(), coffee.UserID, "never")
	assert.ErrorIs(t, err, gateway.ErrNoCharge)
	_, err = client.ChargeByKey(context.Background(), coffee.UserID+1, "lost")
	assert.ErrorIs(t, err, gateway.ErrNoCharge, "another user's key is not this one")
	_, err = client.ChargeByKey(context.Background(), coffee.UserID, "a/b?c=d&e#f")
	assert.ErrorIs(t, err, gateway.ErrNoCharge, "any key is escaped, not read as a path")

	gw.FailNextLookups(Failure{Status: http.StatusServiceUnavailable})
	_, err = client.ChargeByKey(context.Background(), coffee.UserID, "lost")
	assert.True(t, gateway.IsOutage(err), "a lookup fails on command: %v", err)
	assert.Len(t, gw.Charges(), 1, "and a lookup never charges")
}

func TestGatewayDeclinesOnCommandAndKeepsEachChargesKey(t *testing.T) {
	gw := Start()
	defer gw.Close()
	client := gw.Client()
	gw.Decline(666)
	declined := coffee
	declined.AmountCents = 666
	_, err := client.Charge(context.Background(), declined, "key-1")
	var gwErr *gateway.Error
	require.ErrorAs(t, err, &gwErr)
	assert.Equal(t, http.StatusPaymentRequired, gwErr.StatusCode)
	assert.True(t, gateway.IsClientError(err), "a decline is the caller's to handle, not an outage")
	assert.Empty(t, gw.Charges(), "declined: nothing charged")

	charge, err := client.Charge(context.Background(), coffee, "key-2")
	require.NoError(t, err)
	_, err = client.Charge(context.Background(), coffee, "")
	require.NoError(t, err)
	keys := gw.Keys()
	assert.Len(t, keys, 2)
	assert.Equal(t, gateway.ScopedKey(coffee.UserID, "key-2"), keys[charge.ID])
}

func TestGatewayHoldsChargesUntilReleased(t *testing.T) {
	gw := Start()
	defer gw.Close()
	client := gw.Client()
	gw.Hold()
	charged := make(chan error, 2)
	for _, key := range []string{"held-1", "held-2"} {
		go func() {
			_, err := client.Charge(context.Background(), coffee, key)
			charged <- err
		}()
	}
	require.Eventually(t, func() bool { return gw.Held() == 2 }, 10*time.Second, time.Millisecond, "both wait")
	assert.Empty(t, gw.Charges(), "nothing is charged while held")
	gw.Release()
	for range 2 {
		require.NoError(t, <-charged)
	}
	assert.Len(t, gw.Charges(), 2)
	assert.Zero(t, gw.Held())
	_, err := client.Charge(context.Background(), coffee, "after")
	require.NoError(t, err, "after Release, charges no longer wait")
}
