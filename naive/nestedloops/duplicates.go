// Package nestedloops matches records the way that works first: for each one,
// look through all the others. Two nested loops over n records make n² steps:
// nothing at 100 records, a second at 10,000, an hour at a million.
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
// It compares every user with every later one: key runs about n² times.
func FindDuplicates(users []shop.User, key func(shop.User) string) [][]shop.User {
	groups := [][]shop.User{}
	grouped := make([]bool, len(users))
	for i := range users {
		if grouped[i] {
			continue
		}
		group := []shop.User{users[i]}
		for j := i + 1; j < len(users); j++ {
			if !grouped[j] && key(users[i]) == key(users[j]) {
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
