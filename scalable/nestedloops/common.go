package nestedloops

import (
	"slices"

	"works-vs-scales/shop"
)

// CommonCustomers returns the users of a who are also in b, by key, in the
// order of a.
//
// It files the keys of b in a map under their hash, then looks up each user
// of a and compares its key only with the keys filed under the same hash: key
// runs len(a)+len(b) times, and Equal about once per user of a, however long
// the lists. (This is the reference answer to lesson 5's exercise.)
func CommonCustomers[K shop.Key[K]](a, b []shop.User, key func(shop.User) K) []shop.User {
	inB := make(map[uint64][]K, len(b))
	for _, v := range b {
		k := key(v)
		inB[k.Hash()] = append(inB[k.Hash()], k)
	}
	common := []shop.User{}
	for _, u := range a {
		k := key(u)
		if slices.ContainsFunc(inB[k.Hash()], k.Equal) {
			common = append(common, u)
		}
	}
	return common
}
