// Package nestedloops matches records with an index built once: a map from
// each record's key to where it appears. Building it is n steps, each lookup
// one, so the whole job grows with n, not n².
//
// Compare with works-vs-scales/naive/nestedloops.
package nestedloops

import "works-vs-scales/shop"

// FindDuplicates returns the groups of users who share a key (such as
// shop.NormalizeEmail of their email): each group in input order, the groups
// in the order of their first member. Users with a key of their own are in no
// group.
//
// It runs key once per user, filing each under its key in a map: n steps, and
// memory for the map.
func FindDuplicates(users []shop.User, key func(shop.User) string) [][]shop.User {
	byKey := make(map[string][]shop.User, len(users))
	var firstSeen []string // the keys in order of their first user
	for _, u := range users {
		k := key(u)
		if _, seen := byKey[k]; !seen {
			firstSeen = append(firstSeen, k)
		}
		byKey[k] = append(byKey[k], u)
	}
	groups := [][]shop.User{}
	for _, k := range firstSeen {
		if group := byKey[k]; len(group) > 1 {
			groups = append(groups, group)
		}
	}
	return groups
}
