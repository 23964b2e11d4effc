// Package nestedloops matches records the way that works first: for each one,
// look through all the others (each record's key computed once, as anyone
// would). Two nested loops over n records make about n²/2 comparisons: 5,000
// at 100 records, 50 million at 10,000, 500 billion at a million.
//
// Compare with works-vs-scales/scalable/nestedloops, which builds an index in
// a map once and looks each record up in it.
package nestedloops

import "works-vs-scales/shop"

// FindDuplicates returns the groups of users who share a key (such as
// shop.NormalizeEmail of their email): each group in input order, the groups
// in the order of their first member. Users with a key of their own are in no
// group.
//
// It computes each user's key once, then compares every key with every later
// one: n calls to key, but about n²/2 comparisons.
func FindDuplicates(users []shop.User, key func(shop.User) string) [][]shop.User {
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = key(u)
	}
	groups := [][]shop.User{}
	grouped := make([]bool, len(users))
	for i := range users {
		if grouped[i] {
			continue
		}
		group := []shop.User{users[i]}
		for j := i + 1; j < len(users); j++ {
			if !grouped[j] && keys[i] == keys[j] {
				group = append(group, users[j])
				grouped[j] = true
			}
		}
		if len(group) > 1 {
			groups = append(groups, group)
		}
	}
	return groups
}
