// Package replicas is lesson 18's exercise: yours to change.
//
// Store below writes to the primary and reads everything from the replica:
// a user who places an order and lists their orders at once does not see
// it while the replica is behind. Make a user read their own writes, and keep
// every other read on the replica (reading everything from the primary is
// right, and leaves the replica idle), then check:
//
//	go test -race -tags exercise -run '^TestExercise18$' ./bench/replicas
//
// The check runs with the replica a minute behind: ten users each place an
// order through your Store at once, then list their orders at once, and each
// must see the order (under -race, which the check needs: a Store serves
// requests at once, and what it shares between them must be safe); a user
// whose order was written behind your Store's back lists theirs, and must get
// the replica's answer, without it; and three seconds after their order, the
// replica still behind, the first user must still see it. One answer is in
// works-vs-scales/scalable/replicas.
package replicas
