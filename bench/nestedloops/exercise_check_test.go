package nestedloops

import (
	"fmt"
	"slices"
	"testing"

	scalable "works-vs-scales/scalable/nestedloops"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	naive "works-vs-scales/naive/nestedloops"
	"works-vs-scales/shop"
)

// Lesson 5's exercise, in exercises/nestedloops. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise05, is in exercise_test.go, behind the exercise tag.

type commonCustomersFunc func(a, b []shop.User, key func(shop.User) string) []shop.User

// checkExercise05 says what is still wrong with an answer to lesson 5's
// exercise, or nil when it is done: the naive answer, with key run at most
// twice per customer of both lists.
func checkExercise05(t testing.TB, common commonCustomersFunc) error {
	a, b := signups(3000)[:2000], signups(3000)[1000:]
	want := naive.CommonCustomers(a, b, byEmail)
	key, calls := countingKey(byEmail)
	got := common(a, b, key)
	if diff := cmp.Diff(want, got); diff != "" {
		return fmt.Errorf("%d customers in common, want %d: %s (-naive +yours):\n%s", len(got), len(want), whyNotCommon(want, got), diff)
	}
	if budget := 2 * (len(a) + len(b)); *calls > budget {
		return fmt.Errorf("right answer, with %d calls to key for lists of %d and %d: make it at most %d", *calls, len(a), len(b), budget)
	}
	t.Logf("lists of %d and %d, %d customers in common: %d calls to key (the naive loops: %d at most, 2·len(a)·len(b))",
		len(a), len(b), len(want), *calls, 2*len(a)*len(b))
	return nil
}

// whyNotCommon says, in lesson 5's words, how got differs from want.
func whyNotCommon(want, got []shop.User) string {
	ids := func(users []shop.User) []int64 {
		out := make([]int64, len(users))
		for i, u := range users {
			out[i] = u.ID
		}
		return out
	}
	wantIDs, gotIDs := ids(want), ids(got)
	slices.Sort(wantIDs)
	slices.Sort(gotIDs)
	switch {
	case slices.Equal(wantIDs, gotIDs):
		return "the same customers in another order; return them in the order of a"
	case len(got) < len(want):
		return "some customers are missing: compare what key returns (the normalized email), not the email as typed"
	default:
		return "customers who are not on both lists, or the same customer twice"
	}
}

func TestExercise05CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise05(t, naive.CommonCustomers)
	require.ErrorContains(t, err, "calls to key")
	t.Log(err)
}

func TestExercise05CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		common commonCustomersFunc
		want   string
	}{
		{"the email as typed", commonByTypedEmail, "compare what key returns"},
		{"the order of the map", commonInMapOrder, "return them in the order of a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise05(t, tc.common)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

func TestExercise05CheckPassesOnTheAnswer(t *testing.T) {
	require.NoError(t, checkExercise05(t, scalable.CommonCustomers))
}

// commonByTypedEmail is a wrong answer to exercise 5: a set of the emails as
// typed, which misses a customer who signed up again in capitals or with
// spaces.
func commonByTypedEmail(a, b []shop.User, _ func(shop.User) string) []shop.User {
	inB := make(map[string]bool, len(b))
	for _, v := range b {
		inB[v.Email] = true
	}
	common := []shop.User{}
	for _, u := range a {
		if inB[u.Email] {
			common = append(common, u)
		}
	}
	return common
}

// commonInMapOrder is a wrong answer to exercise 5: it files a by key and
// returns the customers in the map's order, which is no order at all.
func commonInMapOrder(a, b []shop.User, key func(shop.User) string) []shop.User {
	inA := make(map[string][]shop.User, len(a))
	for _, u := range a {
		inA[key(u)] = append(inA[key(u)], u)
	}
	inB := make(map[string]bool, len(b))
	for _, v := range b {
		inB[key(v)] = true
	}
	common := []shop.User{}
	for k, users := range inA {
		if inB[k] {
			common = append(common, users...)
		}
	}
	return common
}
