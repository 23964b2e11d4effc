package nestedloops

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	naive "works-vs-scales/naive/nestedloops"
	scalable "works-vs-scales/scalable/nestedloops"
	"works-vs-scales/shop"
)

// Lesson 5: nested loops against a map. No database: the cost is all in Go.

// signups returns n newsletter signups merged from several systems: about one
// in twenty is a customer who signed up before, with their email in other case
// or with stray spaces. The same n gives the same list.
func signups(n int) []shop.User {
	r := rand.New(rand.NewPCG(uint64(n), 5))
	users := make([]shop.User, n)
	for i := range users {
		email := fmt.Sprintf("customer%d@example.com", i)
		if i > 0 && r.IntN(20) == 0 {
			email = users[r.IntN(i)].Email // signed up before
			switch r.IntN(3) {
			case 0:
				email = strings.ToUpper(email)
			case 1:
				email = " " + email + " "
			}
		}
		users[i] = shop.User{ID: int64(i + 1), Name: fmt.Sprintf("Customer %d", i), Email: email}
	}
	return users
}

func byEmail(u shop.User) string { return shop.NormalizeEmail(u.Email) }

// countingKey wraps key and counts its calls: the work each version does,
// as a number rather than a time.
func countingKey(key func(shop.User) string) (func(shop.User) string, *int) {
	calls := new(int)
	return func(u shop.User) string { *calls++; return key(u) }, calls
}

func TestFindDuplicatesAgree(t *testing.T) {
	for _, n := range []int{0, 1, 100, 2000} {
		users := signups(n)
		want := naive.FindDuplicates(users, byEmail)
		got := scalable.FindDuplicates(users, byEmail)
		require.Equal(t, want, got, "users=%d", n)
		if n >= 100 {
			require.NotEmpty(t, want, "signups(%d) has duplicates to find", n)
		}
		for _, group := range want {
			for _, u := range group {
				require.Equal(t, byEmail(group[0]), byEmail(u))
			}
		}
	}
}

// TestFindDuplicatesWork pins what the two versions share: each computes a
// user's key once, so the difference the benchmark shows is the algorithm
// (about n²/2 comparisons of keys against n lookups in a map), not a key
// recomputed in the inner loop.
func TestFindDuplicatesWork(t *testing.T) {
	for _, n := range []int{100, 1000} {
		users := signups(n)
		key, calls := countingKey(byEmail)
		naive.FindDuplicates(users, key)
		assert.Equal(t, n, *calls, "naive, %d users: the key is computed once per user", n)

		key, calls = countingKey(byEmail)
		scalable.FindDuplicates(users, key)
		assert.Equal(t, n, *calls, "map, %d users", n)
	}
}

func BenchmarkFindDuplicates(b *testing.B) {
	top := 10_000
	if benchkit.Large() {
		top = 100_000 // naive takes minutes an operation here
	}
	impls := []struct {
		name string
		find func([]shop.User, func(shop.User) string) [][]shop.User
	}{
		{"naive", naive.FindDuplicates},
		{"scalable", scalable.FindDuplicates},
	}
	for _, impl := range impls {
		b.Run(benchkit.Name("impl", impl.name), func(b *testing.B) {
			for _, n := range benchkit.Ladder(100, top) {
				users := signups(n)
				b.Run(benchkit.Name("users", n), func(b *testing.B) {
					for b.Loop() {
						impl.find(users, byEmail)
					}
				})
			}
		})
	}
}
