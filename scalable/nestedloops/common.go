package nestedloops

import "works-vs-scales/shop"

// CommonCustomers returns the users of a who are also in b, by key, in the
// order of a.
//
// It files the keys of b in a set, then looks up each user of a: key runs
// len(a)+len(b) times. (This is the reference answer to lesson 5's exercise.)
func CommonCustomers(a, b []shop.User, key func(shop.User) string) []shop.User {
	inB := make(map[string]struct{}, len(b))
	for _, v := range b {
		inB[key(v)] = struct{}{}
	}
	common := []shop.User{}
	for _, u := range a {
		if _, ok := inB[key(u)]; ok {
			common = append(common, u)
		}
	}
	return common
}
