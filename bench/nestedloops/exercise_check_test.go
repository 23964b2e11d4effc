package nestedloops

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	naive "works-vs-scales/naive/nestedloops"
	scalable "works-vs-scales/scalable/nestedloops"
	"works-vs-scales/shop"
)

// Lesson 5's exercise, in exercises/nestedloops. Its check is here, with the wrong
// answers it must catch and the tests that prove it fails on the starting point
// and on each wrong answer, and passes on the answer; the trainee's run of it,
// TestExercise05, is in exercise_test.go, behind the exercise tag.
//
// The check counts work, it does not time it: the keys it hands an answer
// count their calls to Equal, the only way to compare two of them, so a loop
// inside a loop shows as a number of comparisons that grows with the product
// of the lists, the same on every machine, with or without -race. What it
// cannot see is work done on what a key gives away, its Hash: an answer that
// compares every hash with every other, then calls Equal only where two
// match, makes the comparisons of a map. The lesson's wrong answers go
// through Equal, as a trainee's do.

type commonCustomersFunc func(a, b []shop.User, key func(shop.User) countedKey) []shop.User

// equalsPerCustomer is the check's budget of calls to Equal per customer of
// both lists. A map under the hash makes at most one per key filed under the
// same hash (ten customers share one: see sharedHash): the reference answer
// makes 1.4 per customer of both lists at either size. A loop inside a loop
// makes 303 per customer of both on lists of 1,000 (605,500 in all), and more the
// longer the lists.
const equalsPerCustomer = 8

// checkSizes are the lengths of the two lists the check runs an answer on:
// its work is counted at each, and must stay within the same budget per
// customer at both.
var checkSizes = [2]int{1000, 10_000}

// checkExercise05 says what is still wrong with an answer to lesson 5's
// exercise, or nil when it is done: the naive answer, with key run at most
// twice per customer of both lists and Equal at most equalsPerCustomer times,
// on two lists of 1,000 customers and on two of 10,000.
//
// On the small lists the answer runs to its end and is compared with the
// naive one; on the large ones the keys stop it (a panic the check recovers)
// once it passes either budget, so a loop inside a loop is caught at its
// first comparison too many, not after tens of millions.
func checkExercise05(t testing.TB, common commonCustomersFunc) error {
	var counted [2]work
	for i, n := range checkSizes {
		a, b := lists(n)
		keyBudget, equalBudget := 2*(len(a)+len(b)), equalsPerCustomer*(len(a)+len(b))
		var want []shop.User
		w := &counted[i]
		if i == 0 {
			// The naive answer is the definition; on the large lists it
			// would take 200 million calls to key, and the reference answer,
			// which agrees with it here (TestExercise05CheckPassesOnTheAnswer),
			// stands in.
			want = naive.CommonCustomers(a, b, new(work).key)
		} else {
			want = scalable.CommonCustomers(a, b, new(work).key)
			w.keyBudget, w.equalBudget = keyBudget, equalBudget
		}
		got, stopped := runCounted(common, a, b, w)
		if stopped == nil {
			if diff := cmp.Diff(want, got); diff != "" {
				return fmt.Errorf("two lists of %d: %d customers in common, want %d: %s (-naive +yours):\n%s", n, len(got), len(want), whyNotCommon(a, b, want, got), diff)
			}
		}
		if w.keys > keyBudget {
			return fmt.Errorf("right answer, with %s calls to key for lists of %d and %d: make it at most %d", w.count(w.keys, stopped), len(a), len(b), keyBudget)
		}
		if w.equals > equalBudget {
			grew := ""
			if i > 0 {
				grew = fmt.Sprintf(" (and %d for two lists of %d: more than the lists grew)", counted[0].equals, checkSizes[0])
			}
			return fmt.Errorf("right answer, and key runs at most twice per customer, but Equal ran %s times for two lists of %d customers%s, %s per customer of both lists: make it at most %d per customer, as a map under the hash does however long the lists; "+
				"a search of one list for each customer of the other %s, even with every key computed once (see \"Why it breaks\"): compare a key only with the keys filed under its hash",
				w.count(w.equals, stopped), n, grew, w.perCustomer(w.equals, stopped, len(a)+len(b)), equalsPerCustomer, loopInLoop)
		}
	}
	t.Logf("%d customers in common on lists of %d: key ran %d times, Equal %d; on lists of %d: key %d, Equal %d (the naive loops: 2·%d² calls to key)",
		len(commonOf(checkSizes[0])), checkSizes[0], counted[0].keys, counted[0].equals, checkSizes[1], counted[1].keys, counted[1].equals, checkSizes[1])
	return nil
}

// lists returns the check's two lists of n customers: half of each is on the
// other, and about one customer in twenty signed up again, as in signups.
func lists(n int) (a, b []shop.User) {
	users := signups(n + n/2)
	return users[:n], users[n/2:]
}

// commonOf returns the answer for the check's lists of n, as the reference
// answer gives it.
func commonOf(n int) []shop.User {
	a, b := lists(n)
	return scalable.CommonCustomers(a, b, new(work).key)
}

// A countedKey is a customer's key as the check hands it to an answer: the
// email as shop.NormalizeEmail makes it, a hash that ten customers share
// (sharedHash), and the work it counts.
type countedKey struct {
	email string
	hash  uint64
	work  *work
}

// Equal says whether k and other are the same customer's key, and counts the
// call.
func (k countedKey) Equal(other countedKey) bool {
	k.work.equals++
	if k.work.equalBudget > 0 && k.work.equals > k.work.equalBudget {
		panic(stop{"Equal"})
	}
	return k.email == other.email
}

// Hash returns k's hash, which the keys of nine other customers share.
func (k countedKey) Hash() uint64 { return k.hash }

// sharedHash is the hash of a normalized email without the last digit of its
// number: customer120@example.com to customer129@example.com share one, as
// the keys in one bucket of a hash table do. An answer that takes two equal
// hashes for the same customer is wrong on the check's lists, every time.
func sharedHash(email string) uint64 {
	if at := strings.LastIndexByte(email, '@'); at > 0 && email[at-1] >= '0' && email[at-1] <= '9' {
		email = email[:at-1] + email[at:]
	}
	h := fnv.New64a()
	h.Write([]byte(email))
	return h.Sum64()
}

// work counts an answer's calls to key and to Equal. With a budget (not 0),
// the call past it stops the answer.
type work struct {
	keys, equals           int
	keyBudget, equalBudget int
}

// stop is the panic that stops an answer past its budget: what it says is
// what a trainee reads if it ends the test binary, as it does from a goroutine
// of their own.
type stop struct{ what string }

// Error says which budget stopped the answer.
func (s stop) Error() string {
	return "the check stopped CommonCustomers: more calls to " + s.what + " than its budget for the lists (lesson 5's check)"
}

// key returns u's countedKey and counts the call.
func (w *work) key(u shop.User) countedKey {
	w.keys++
	if w.keyBudget > 0 && w.keys > w.keyBudget {
		panic(stop{"key"})
	}
	email := shop.NormalizeEmail(u.Email)
	return countedKey{email: email, hash: sharedHash(email), work: w}
}

// count formats a count, "more than" it when the answer was stopped there.
func (w *work) count(n int, stopped *stop) string {
	if stopped != nil {
		return fmt.Sprintf("more than %d", n-1)
	}
	return fmt.Sprint(n)
}

// perCustomer formats n per customer, "more than" it when the answer was
// stopped.
func (w *work) perCustomer(n int, stopped *stop, customers int) string {
	if stopped != nil {
		return fmt.Sprintf("more than %d", (n-1)/customers)
	}
	return fmt.Sprintf("%.0f", float64(n)/float64(customers))
}

// runCounted runs common on a and b with w's keys, and says whether the keys
// stopped it.
func runCounted(common commonCustomersFunc, a, b []shop.User, w *work) (got []shop.User, stopped *stop) {
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(stop)
			if !ok {
				panic(r)
			}
			stopped = &s
		}
	}()
	return common(a, b, w.key), nil
}

// whyNotCommon says how got differs from want, the users of a whose key is in
// b, in what the check can see of it.
func whyNotCommon(a, b, want, got []shop.User) string {
	ids := func(users []shop.User) []int64 {
		out := make([]int64, len(users))
		for i, u := range users {
			out[i] = u.ID
		}
		return out
	}
	wantIDs, gotIDs := ids(want), ids(got)
	slices.Sort(wantIDs)
	slices.Sort(gotIDs)
	if slices.Equal(wantIDs, gotIDs) {
		return "the same customers in another order; return them in the order of a"
	}
	inA := make(map[shop.User]bool, len(a))
	for _, u := range a {
		inA[u] = true
	}
	seen := make(map[int64]int)
	for _, u := range got {
		if !inA[u] {
			return fmt.Sprintf("customer %d (%q) is not a user of a as a holds them: return the users of a", u.ID, u.Email)
		}
		if seen[u.ID]++; seen[u.ID] > 1 {
			return fmt.Sprintf("customer %d is in your answer twice", u.ID)
		}
	}
	inWant := make(map[int64]bool, len(want))
	for _, m := range want {
		inWant[m.ID] = true
	}
	hashInB := make(map[uint64]bool, len(b))
	for _, v := range b {
		hashInB[sharedHash(byEmail(v))] = true
	}
	for _, u := range got {
		if !inWant[u.ID] && hashInB[sharedHash(byEmail(u))] {
			return fmt.Sprintf("customer %d (%q) is not on b, which has only customers whose key has the same hash: equal hashes say two keys may be the same, Equal says whether they are", u.ID, u.Email)
		}
	}
	typedInB := make(map[string]bool, len(b))
	for _, v := range b {
		typedInB[v.Email] = true
	}
	gotKeys := make(map[string]shop.User)
	for _, u := range got {
		gotKeys[byEmail(u)] = u
	}
	for _, m := range want {
		if seen[m.ID] > 0 {
			continue
		}
		if other, ok := gotKeys[byEmail(m)]; ok {
			return fmt.Sprintf("customer %d (%q) is missing, though you returned customer %d (%q), whose key is the same: a customer on a twice is in the answer twice, once for each of a's users", m.ID, m.Email, other.ID, other.Email)
		}
		if !typedInB[m.Email] {
			return fmt.Sprintf("customer %d (%q) is missing: b has the same key, %q, but not the email as typed; compare what key returns", m.ID, m.Email, byEmail(m))
		}
		return fmt.Sprintf("customer %d (%q) is missing: b has it", m.ID, m.Email)
	}
	return "customers who are not on both lists"
}

func TestExercise05CheckFailsOnTheStart(t *testing.T) {
	err := checkExercise05(t, naive.CommonCustomers[countedKey])
	require.ErrorContains(t, err, "calls to key")
	t.Log(err)
}

// loopInLoop is the message of a wrong answer whose calls to key are a map's
// and whose calls to Equal are a loop's inside a loop.
const loopInLoop = "compares every customer with every other"

func TestExercise05CheckFailsOnWrongAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		common commonCustomersFunc
		want   string
	}{
		{"the email as typed", commonByTypedEmail[countedKey], "but not the email as typed; compare what key returns"},
		{"the order of the map", commonInMapOrder[countedKey], "return them in the order of a"},
		{"every key computed once, then a loop inside a loop", commonWithKeysFirst[countedKey], loopInLoop},
		{"a table of 256 buckets that never grows", commonInFixedTable[countedKey], "more than the lists grew"},
		{"b's customers", commonInOrderOfB[countedKey], "is not a user of a as a holds them"},
		{"one customer per key", commonOnePerKey[countedKey], "a customer on a twice is in the answer twice"},
		{"the hash alone", commonByHash[countedKey], "equal hashes say two keys may be the same, Equal says whether they are"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExercise05(t, tc.common)
			require.ErrorContains(t, err, tc.want)
			t.Log(err)
		})
	}
}

// TestExercise05LoopInLoopMakesTheLessonsCount pins the count the lesson
// quotes: a loop inside a loop, every key computed once, calls Equal 605,500
// times on the check's two lists of 1,000, 303 per customer of both.
func TestExercise05LoopInLoopMakesTheLessonsCount(t *testing.T) {
	err := checkExercise05(t, commonWithKeysFirst[countedKey])
	require.ErrorContains(t, err, "Equal ran 605500 times for two lists of 1000 customers, 303 per customer of both lists")
}

func TestExercise05CheckPassesOnTheAnswer(t *testing.T) {
	a, b := lists(checkSizes[0])
	require.Equal(t, naive.CommonCustomers(a, b, new(work).key), scalable.CommonCustomers(a, b, new(work).key),
		"the reference answer is the naive one on the small lists, so it can stand in for it on the large")
	require.NotEmpty(t, commonOf(checkSizes[0]))
	require.NoError(t, checkExercise05(t, scalable.CommonCustomers[countedKey]))
}

// TestExercise05KeysShareHashes pins what the "hash alone" answer is caught
// by: on the check's lists, customers of a who are not on b share a hash with
// customers of b, at both sizes.
func TestExercise05KeysShareHashes(t *testing.T) {
	for _, n := range checkSizes {
		a, b := lists(n)
		inB := make(map[uint64]bool, len(b))
		for _, v := range b {
			inB[sharedHash(byEmail(v))] = true
		}
		common := commonOf(n)
		shared := 0
		for _, u := range a {
			if inB[sharedHash(byEmail(u))] {
				shared++
			}
		}
		require.Greater(t, shared, len(common), "lists of %d: customers of a whose hash is on b, beside those whose key is", n)
	}
}

// commonByTypedEmail is a wrong answer to exercise 5: a set of the emails as
// typed, which misses a customer who signed up again in capitals or with
// spaces.
func commonByTypedEmail[K shop.Key[K]](a, b []shop.User, _ func(shop.User) K) []shop.User {
	inB := make(map[string]bool, len(b))
	for _, v := range b {
		inB[v.Email] = true
	}
	common := []shop.User{}
	for _, u := range a {
		if inB[u.Email] {
			common = append(common, u)
		}
	}
	return common
}

// commonInMapOrder is a wrong answer to exercise 5: it files a by the hash of
// its keys and returns the customers in the map's order, which is no order
// at all.
func commonInMapOrder[K shop.Key[K]](a, b []shop.User, key func(shop.User) K) []shop.User {
	inB := make(map[uint64][]K, len(b))
	for _, v := range b {
		k := key(v)
		inB[k.Hash()] = append(inB[k.Hash()], k)
	}
	inA := make(map[uint64][]shop.User, len(a))
	for _, u := range a {
		h := key(u).Hash()
		inA[h] = append(inA[h], u)
	}
	common := []shop.User{}
	for _, users := range inA {
		for _, u := range users {
			k := key(u)
			if slices.ContainsFunc(inB[k.Hash()], k.Equal) {
				common = append(common, u)
			}
		}
	}
	return common
}

// The wrong answers below are written from the lesson's "Why it breaks" as a
// trainee writes them: each meets the letter of "key at most twice per
// customer", or trades the loop for a map that loses something.

// commonWithKeysFirst is a wrong answer to exercise 5: every key computed
// once, before the loops, as the lesson's naive FindDuplicates does, and
// then, for each customer of a, a search of b's keys: key runs len(a)+len(b)
// times, and Equal still about len(a)·len(b)/2.
func commonWithKeysFirst[K shop.Key[K]](a, b []shop.User, key func(shop.User) K) []shop.User {
	keysOfB := make([]K, len(b))
	for i, v := range b {
		keysOfB[i] = key(v)
	}
	common := []shop.User{}
	for _, u := range a {
		if slices.ContainsFunc(keysOfB, key(u).Equal) {
			common = append(common, u)
		}
	}
	return common
}

// commonInFixedTable is a wrong answer to exercise 5: a hash table of its
// own, 256 buckets that never grow. On lists of 1,000 a bucket holds about 4
// keys of b and a lookup compares a few; on lists of 10,000 it holds about 40,
// and each lookup compares ten times as many: the comparisons grow with
// len(a)·len(b)/256, a loop inside a loop divided by a constant.
func commonInFixedTable[K shop.Key[K]](a, b []shop.User, key func(shop.User) K) []shop.User {
	var buckets [256][]K
	for _, v := range b {
		k := key(v)
		buckets[k.Hash()%256] = append(buckets[k.Hash()%256], k)
	}
	common := []shop.User{}
	for _, u := range a {
		k := key(u)
		if slices.ContainsFunc(buckets[k.Hash()%256], k.Equal) {
			common = append(common, u)
		}
	}
	return common
}

// commonInOrderOfB is a wrong answer to exercise 5: a set of a's keys, and
// b's customers whose key is in it: the right keys, but b's users, in b's
// order, where a customer signed up on both lists as two users.
func commonInOrderOfB[K shop.Key[K]](a, b []shop.User, key func(shop.User) K) []shop.User {
	inA := make(map[uint64][]K, len(a))
	for _, u := range a {
		k := key(u)
		inA[k.Hash()] = append(inA[k.Hash()], k)
	}
	common := []shop.User{}
	for _, v := range b {
		k := key(v)
		if slices.ContainsFunc(inA[k.Hash()], k.Equal) {
			common = append(common, v)
		}
	}
	return common
}

// commonOnePerKey is a wrong answer to exercise 5: an index from each key of
// a to its user, and the users of the index whose key is in b, in a's order:
// a customer who signed up twice on a is kept once.
func commonOnePerKey[K shop.Key[K]](a, b []shop.User, key func(shop.User) K) []shop.User {
	type entry struct {
		key  K
		user shop.User
	}
	var entries []*entry // one per key of a, in the order of its first user
	byHash := make(map[uint64][]*entry, len(a))
	for _, u := range a {
		k := key(u)
		filed := byHash[k.Hash()]
		if i := slices.IndexFunc(filed, func(e *entry) bool { return e.key.Equal(k) }); i >= 0 {
			filed[i].user = u
			continue
		}
		e := &entry{key: k, user: u}
		byHash[k.Hash()] = append(filed, e)
		entries = append(entries, e)
	}
	inB := make(map[uint64][]K, len(b))
	for _, v := range b {
		k := key(v)
		inB[k.Hash()] = append(inB[k.Hash()], k)
	}
	common := []shop.User{}
	for _, e := range entries {
		if slices.ContainsFunc(inB[e.key.Hash()], e.key.Equal) {
			common = append(common, e.user)
		}
	}
	return common
}

// commonByHash is a wrong answer to exercise 5: a set of the hashes of b's
// keys, and a's customers whose hash is in it, never asking Equal: it adds
// the customers whose key only shares a hash with one on b.
func commonByHash[K shop.Key[K]](a, b []shop.User, key func(shop.User) K) []shop.User {
	inB := make(map[uint64]bool, len(b))
	for _, v := range b {
		inB[key(v).Hash()] = true
	}
	common := []shop.User{}
	for _, u := range a {
		if inB[key(u).Hash()] {
			common = append(common, u)
		}
	}
	return common
}
