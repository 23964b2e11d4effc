package shop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"works-vs-scales/internal/pgcopy"
)

// GeneratorVersion changes whenever Load would build a different database for
// the same scale and seed (other rows, or another way of loading them), so that
// templates seeded by an older version are not reused.
const GeneratorVersion = 9

// The generated shop spans five years of orders.
var (
	epoch = time.Date(2021, time.January, 1, 0, 0, 0, 0, time.UTC)
	span  = 5 * 365 * 24 * time.Hour
)

// Each table draws from its own random stream, so changing how one table is
// generated leaves the others as they were.
const (
	streamUsers uint64 = iota + 1
	streamProducts
	streamOrders
	streamOrderItems
	streamPosts
	streamComments
	streamStock
)

// A value is one column of a generated row: rows are slices of values, not
// of any, so that making one boxes nothing (the large shop is 4.3M rows, and
// boxing each of their numbers and times was most of the generator's
// allocations), and they are copied to the server in COPY's binary format.
// A generator returns the same slice each call, its values replaced: a row
// is valid until the next.
type value = pgcopy.Value

func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// at returns the i-th of n moments spread evenly over the span, jittered, in
// increasing order of i, to the microsecond PostgreSQL stores.
func at(r *rand.Rand, i, n int) time.Time {
	offset := time.Duration((float64(i) + r.Float64()) / float64(n) * float64(span))
	return epoch.Add(offset).Truncate(time.Microsecond)
}

// growingAt is at for a shop that grows: the i-th of n moments, in increasing
// order of i, but denser every year. The density rises linearly, from 1 at the
// start of the span to 9 at its end, so the fifth year holds about five times
// the orders of the first, and the first orders still fall on its first day.
func growingAt(r *rand.Rand, i, n int) time.Time {
	const rise = 8 // density 1 + rise·f at fraction f of the span
	u := (float64(i) + r.Float64()) / float64(n)
	// f solves u = (f + rise/2·f²) / (1 + rise/2), the share of orders before f.
	f := (math.Sqrt(1+2*rise*u*(1+rise/2)) - 1) / rise
	return epoch.Add(time.Duration(f * float64(span))).Truncate(time.Microsecond)
}

var (
	firstNames = []string{"Ada", "Alan", "Barbara", "Dennis", "Edsger", "Frances", "Grace", "Ken", "Leslie", "Margaret", "Niklaus", "Radia", "Rob", "Shafi", "Tony", "Yukihiro"}
	lastNames  = []string{"Allen", "Backus", "Codd", "Dijkstra", "Hamilton", "Hopper", "Hoare", "Kernighan", "Knuth", "Lamport", "Liskov", "Perlman", "Pike", "Ritchie", "Thompson", "Wirth", "O'Neill", "Müller"}
	adjectives = []string{"Small", "Large", "Red", "Blue", "Quiet", "Fast", "Sturdy", "Light", "Classic", "Modern"}
	nouns      = []string{"Kettle", "Lamp", "Chair", "Backpack", "Notebook", "Mug", "Keyboard", "Jacket", "Bicycle", "Teapot"}
	categories = []string{"books", "clothing", "electronics", "garden", "grocery", "home", "kitchen", "office", "outdoors", "sports", "toys", "travel"}
)

// NoPhoneEvery says which users gave no phone number: those whose id is a
// multiple of it, whose phone is NULL. Among them are all the
// Scale.EdgeCaseUsers but user 1, so whatever reads a user's orders meets
// both.
const NoPhoneEvery = 5

// userRows returns the users, id 1 (the busiest) first. Every NoPhoneEvery-th
// has no phone number; the others have one in the range set aside for
// fiction, so no real phone rings.
func userRows(s Scale, seed uint64) func() ([]value, error) {
	r := newRand(seed, streamUsers)
	id, n := 0, s.Users()
	var row [5]value
	return func() ([]value, error) {
		if id == n {
			return nil, nil
		}
		id++
		first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		initial := string(rune('A' + r.IntN(26)))
		phone := value{} // NULL
		if id%NoPhoneEvery != 0 {
			phone = pgcopy.Text(fmt.Sprintf("+44 7700 900%03d", id%1000))
		}
		row = [...]value{
			pgcopy.Bigint(int64(id)),
			pgcopy.Text(first + " " + initial + ". " + last),
			pgcopy.Text(fmt.Sprintf("user%d@example.com", id)),
			phone,
			pgcopy.Timestamptz(epoch.Add(-time.Duration(r.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Microsecond)),
		}
		return row[:], nil
	}
}

// productRows returns the products, each with 0 to 1,000 units in stock.
func productRows(s Scale, seed uint64) func() ([]value, error) {
	r, stock := newRand(seed, streamProducts), newRand(seed, streamStock)
	id, n := 0, s.Products()
	var row [5]value
	return func() ([]value, error) {
		if id == n {
			return nil, nil
		}
		id++
		name := fmt.Sprintf("%s %s #%d", adjectives[r.IntN(len(adjectives))], nouns[r.IntN(len(nouns))], id)
		if id == SearchEdgeProductID {
			name = SearchEdgeProductName
		}
		// Prices spread from about 1 to 1,000 in a log scale: many cheap things, few dear ones.
		price := int64(100 * math.Pow(10, 3*r.Float64()))
		row = [...]value{pgcopy.Bigint(int64(id)), pgcopy.Text(name), pgcopy.Text(categories[r.IntN(len(categories))]), pgcopy.Bigint(price - price%100 + 99), pgcopy.Integer(int32(stock.IntN(1001)))}
		return row[:], nil
	}
}

// orderPlan is who placed each order, in id order, and where the edge cases
// are seeded among them.
type orderPlan struct {
	owners []int32
	// itemless holds the ids of the orders that have no items.
	itemless map[int64]bool
	// tied holds the ids of the orders placed in the same microsecond as the
	// order before them, by the same user.
	tied map[int64]bool
}

// planOrders decides whose order each one is, from a seeded shuffle of every
// user's share, so a user's orders are spread over the whole table, as in a
// real one. It returns the random stream of the orders, to go on with.
//
// Then it seeds the edge cases at the EdgeCaseUsers: about halfway through
// each one's orders, oldest first, an order with no items, and after it two
// orders placed in the same microsecond (the second is moved next to the
// first, trading places with another user's order).
func planOrders(s Scale, seed uint64) (orderPlan, *rand.Rand) {
	r := newRand(seed, streamOrders)
	owners := make([]int32, 0, s.Orders())
	for id := int64(1); id <= int64(s.TopOrders); id++ {
		for range s.OrdersOf(id) {
			owners = append(owners, int32(id))
		}
	}
	r.Shuffle(len(owners), func(i, j int) { owners[i], owners[j] = owners[j], owners[i] })

	plan := orderPlan{owners: owners, itemless: make(map[int64]bool), tied: make(map[int64]bool)}
	edgeUsers := make(map[int32]bool)
	for _, id := range s.EdgeCaseUsers() {
		edgeUsers[int32(id)] = true
	}
	for _, id := range s.EdgeCaseUsers() {
		var mine []int
		for i, owner := range owners {
			if owner == int32(id) {
				mine = append(mine, i)
			}
		}
		// The pair is mine[k] and mine[k+1], moved to the place after mine[k]
		// unless another edge user's order is there (their edges stay put).
		for k := len(mine) / 2; k+1 < len(mine); k++ {
			p, q := mine[k], mine[k+1]
			if q != p+1 && edgeUsers[owners[p+1]] {
				continue
			}
			owners[p+1], owners[q] = owners[q], owners[p+1]
			plan.tied[int64(p+2)] = true
			plan.itemless[int64(mine[k-1]+1)] = true
			break
		}
	}
	return plan, r
}

// pendingOrders is how many of the newest orders are pending: a thousandth
// of them, and never fewer than the warehouse's page of 50 (lesson 3), so that
// its answer is the same size at every scale.
func pendingOrders(orders int) int { return max(50, orders/1000) }

// orderRows returns the orders in id order, which is also time order (ties
// included), as a serial id would be. Volume grows year by year.
func orderRows(s Scale, seed uint64) func() ([]value, error) {
	plan, r := planOrders(s, seed)
	owners := plan.owners
	pending := len(owners) - pendingOrders(len(owners))
	i := 0
	var last time.Time
	var row [4]value
	return func() ([]value, error) {
		if i == len(owners) {
			return nil, nil
		}
		createdAt := growingAt(r, i, len(owners))
		if plan.tied[int64(i+1)] {
			createdAt = last
		}
		last = createdAt
		status := "delivered"
		switch age := float64(i) / float64(len(owners)); {
		case i >= pending:
			status = "pending"
		case age > 0.995:
			status = "shipped"
		case r.IntN(50) == 0:
			status = "cancelled"
		}
		i++
		row = [...]value{pgcopy.Bigint(int64(i)), pgcopy.Bigint(int64(owners[i-1])), pgcopy.Text(status), pgcopy.Timestamptz(createdAt)}
		return row[:], nil
	}
}

// orderItemRows returns every order's items: one to eight lines, most orders
// short, products drawn by popularity (a few bestsellers, a long tail). The
// orders planOrders chose have none. One line in eight was paid at another
// price than the product's today (it was on sale, or the price changed since).
func orderItemRows(s Scale, seed uint64) func() ([]value, error) {
	plan, _ := planOrders(s, seed)
	r := newRand(seed, streamOrderItems)
	lines := rand.NewZipf(r, 1.5, 1, 7)
	popular := rand.NewZipf(r, 1.1, 1, uint64(s.Products()-1))
	prices := productPrices(s, seed)
	orders := s.Orders()
	orderID, line, linesInOrder := int64(0), int32(0), int32(0)
	var row [5]value
	return func() ([]value, error) {
		for line == linesInOrder {
			if orderID == int64(orders) {
				return nil, nil
			}
			orderID, line, linesInOrder = orderID+1, 0, int32(1+lines.Uint64())
			if plan.itemless[orderID] {
				linesInOrder = 0
			}
		}
		line++
		productID := int64(1 + popular.Uint64())
		quantity := int32(1)
		if r.IntN(10) == 0 {
			quantity += int32(r.IntN(4))
		}
		price := prices[productID]
		if r.IntN(8) == 0 {
			price = price * int64(70+r.IntN(50)) / 100
			price = price - price%100 + 99
		}
		row = [...]value{pgcopy.Bigint(orderID), pgcopy.Integer(line), pgcopy.Bigint(productID), pgcopy.Integer(quantity), pgcopy.Bigint(price)}
		return row[:], nil
	}
}

// productPrices returns each product's price by id, as productRows makes them.
func productPrices(s Scale, seed uint64) []int64 {
	prices := make([]int64, s.Products()+1)
	next := productRows(s, seed)
	for row, _ := next(); row != nil; row, _ = next() {
		prices[row[0].Int64()] = row[3].Int64()
	}
	return prices
}

// postRows returns the posts in time order, but for two, among the newest
// 200 that the feed's exercise pages through: post n-10 was published in the
// same microsecond as post n-11, and post n-20 a second before post n-21
// (ids are not always in time order). A few users write most posts.
func postRows(s Scale, seed uint64) func() ([]value, error) {
	r := newRand(seed, streamPosts)
	authors := rand.NewZipf(r, 1.2, 1, uint64(s.Users()-1))
	id, n := 0, s.Posts()
	var last time.Time
	var row [4]value
	return func() ([]value, error) {
		if id == n {
			return nil, nil
		}
		createdAt := at(r, id, n)
		switch id + 1 {
		case n - 10:
			createdAt = last
		case n - 20:
			createdAt = last.Add(-time.Second)
		}
		last = createdAt
		id++
		title := fmt.Sprintf("%s %s review #%d", adjectives[r.IntN(len(adjectives))], nouns[r.IntN(len(nouns))], id)
		row = [...]value{pgcopy.Bigint(int64(id)), pgcopy.Bigint(int64(1 + authors.Uint64())), pgcopy.Text(title), pgcopy.Timestamptz(createdAt)}
		return row[:], nil
	}
}

// commentRows returns the comments, post by post: most posts have none or a
// few, a few have hundreds.
func commentRows(s Scale, seed uint64) func() ([]value, error) {
	r := newRand(seed, streamComments)
	perPost := rand.NewZipf(r, 2, 1, 500)
	posts := postRows(s, seed)
	var post []value
	id, left := int64(0), uint64(0)
	var row [5]value
	return func() ([]value, error) {
		for left == 0 {
			var err error
			if post, err = posts(); post == nil || err != nil {
				return nil, err
			}
			left = perPost.Uint64()
		}
		left--
		id++
		postedAt := post[3].Time()
		createdAt := postedAt.Add(time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Microsecond)
		row = [...]value{pgcopy.Bigint(id), post[0], pgcopy.Bigint(int64(1 + r.IntN(s.Users()))), pgcopy.Text("Comment " + strconv.FormatInt(id, 10)), pgcopy.Timestamptz(createdAt)}
		return row[:], nil
	}
}

// The product whose name holds the characters a LIKE pattern treats as
// wildcards or escapes, so a search for them finds it and nothing else.
const (
	SearchEdgeProductID   = 7
	SearchEdgeProductName = `100% wool_felt C:\kitchen mat #7`
)
