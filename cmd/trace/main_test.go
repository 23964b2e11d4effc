package main

import (
	"context"
	"errors"
	"io"
	"testing"
)

// The trace itself, on a database, is asserted in bench
// (TestObserveTraceFindsNPlusOne): database tests live there alone.

func TestRunRefusesAUserTheShopDoesNotHave(t *testing.T) {
	for _, orders := range []int{0, -1, 3, 1000, 1 << 40} {
		err := run(context.Background(), io.Discard, "postgres://unused", "", orders)
		if !errors.Is(err, errUsage) {
			t.Errorf("run with -orders %d: got %v, want a usage error", orders, err)
		}
	}
}

func TestRunWithoutADatabaseSaysHowToGetOne(t *testing.T) {
	err := run(context.Background(), io.Discard, "", "", 10)
	if !errors.Is(err, errUsage) {
		t.Fatalf("got %v, want a usage error naming WORKSHOP_DATABASE_URL", err)
	}
}
