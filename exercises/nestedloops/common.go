// Package nestedloops is lesson 5's exercise: yours to change.
//
// Marketing wants the customers who are on both of two mailing lists.
// CommonCustomers below works through the naive version, which searches the
// whole second list for every customer of the first. Make key run at most
// 2·(len(a)+len(b)) times, and the work grow with the lists, not with their
// product, then check:
//
//	go test -tags exercise -run Exercise05 ./bench/nestedloops
//
// The check compares your answer with the naive one (in the order of a),
// counts the calls to key, and times your answer on small and large lists in
// turns with a map's: its time must not grow faster.
// One answer is in works-vs-scales/scalable/nestedloops.
package nestedloops

import (
	naive "works-vs-scales/naive/nestedloops"
	"works-vs-scales/shop"
)

// CommonCustomers returns the users of a who are also in b, by key, in the
// order of a.
func CommonCustomers(a, b []shop.User, key func(shop.User) string) []shop.User {
	return naive.CommonCustomers(a, b, key) // replace me
}
