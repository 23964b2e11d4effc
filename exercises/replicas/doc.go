// Package replicas is lesson 18's exercise: yours to change.
//
// Store below writes to the primary and reads everything from the replica:
// a user who places an order and lists their orders at once does not see
// it while the replica is behind. Make a user read their own writes, and keep
// every other read on the replica (reading everything from the primary is
// right, and leaves the replica idle), then check:
//
//	go test -tags exercise -run '^TestExercise18$' ./bench/replicas
//
// The check runs with the replica a second behind: ten users each place an
// order through your Store and list their orders at once, and each must see
// the order; then a user whose order was written behind your Store's back
// lists theirs, and must get the replica's answer, without it. One answer is
// in works-vs-scales/scalable/replicas.
package replicas
