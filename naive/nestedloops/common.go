package nestedloops

import (
	"slices"

	"works-vs-scales/shop"
)

// CommonCustomers returns the users of a who are also in b, by key, in the
// order of a. (Lesson 5's exercise starts here.)
//
// For each user of a it searches all of b: key runs about 2·len(a)·len(b)
// times, and Equal about len(a)·len(b) times.
func CommonCustomers[K shop.Key[K]](a, b []shop.User, key func(shop.User) K) []shop.User {
	common := []shop.User{}
	for _, u := range a {
		if slices.ContainsFunc(b, func(v shop.User) bool { return key(u).Equal(key(v)) }) {
			common = append(common, u)
		}
	}
	return common
}
