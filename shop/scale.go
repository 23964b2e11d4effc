package shop

import "fmt"

// Scale says how big a generated shop is, by its busiest customer.
//
// Orders per user follow a power law, as they do in real shops: the user of
// rank r has TopOrders/r orders, so user 1 has TopOrders, user 10 has a tenth
// of that, and most users have one or two. A further tenth of the users never
// ordered. Every other table grows with TopOrders.
type Scale struct {
	// TopOrders is how many orders the busiest user has: a power of 10.
	TopOrders int
}

// Scales the lessons use, smallest first. Each holds users with exactly 10, 100,
// ... TopOrders orders.
var (
	Small = Scale{TopOrders: 10_000}  // ~94k orders, ~0.2M order items
	Large = Scale{TopOrders: 100_000} // ~1.2M orders, ~2.6M order items
)

// Ladder returns the scales from a busiest user of 100 orders up to top, by
// factors of 10: shops whose orders table grows about 13 times a step.
func Ladder(top Scale) []Scale {
	var ladder []Scale
	for n := 100; n <= top.TopOrders; n *= 10 {
		ladder = append(ladder, Scale{TopOrders: n})
	}
	return ladder
}

// String names the scale in benchmark and database names, e.g. "top10000".
func (s Scale) String() string { return fmt.Sprintf("top%d", s.TopOrders) }

// Users is how many users the shop has: TopOrders who ordered and a tenth more who
// never did.
func (s Scale) Users() int { return s.TopOrders + s.TopOrders/10 }

// Products is how many products the shop sells.
func (s Scale) Products() int { return max(100, s.TopOrders/10) }

// Posts is how many posts the feed holds.
func (s Scale) Posts() int { return s.TopOrders }

// OrdersOf is how many orders the user with this id has.
func (s Scale) OrdersOf(userID int64) int {
	if userID < 1 || userID > int64(s.TopOrders) {
		return 0
	}
	return s.TopOrders / int(userID)
}

// Orders is how many orders the shop has in all.
func (s Scale) Orders() int {
	total := 0
	for id := int64(1); id <= int64(s.TopOrders); id++ {
		total += s.OrdersOf(id)
	}
	return total
}

// UserWithOrders returns the id of a user with exactly n orders, or false when
// the scale has none. A user with zero orders always exists.
func (s Scale) UserWithOrders(n int) (int64, bool) {
	if n == 0 {
		return int64(s.TopOrders) + 1, true
	}
	if n < 0 || n > s.TopOrders || s.TopOrders%n != 0 {
		return 0, false
	}
	return int64(s.TopOrders / n), true
}

// EdgeCaseUsers returns the users whose orders hold the edge cases the
// generator seeds on purpose: every user with 10, 100, ... TopOrders orders.
// About halfway down each one's list, newest first, are two orders placed in
// the same microsecond, and just below them an order with no items.
func (s Scale) EdgeCaseUsers() []int64 {
	var users []int64
	for n := 10; n <= s.TopOrders; n *= 10 {
		users = append(users, int64(s.TopOrders/n))
	}
	return users
}
