package shop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// GeneratorVersion changes whenever Load would build a different database for
// the same scale and seed (other rows, or another way of loading them), so that
// templates seeded by an older version are not reused.
const GeneratorVersion = 4

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

func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// at returns the i-th of n moments spread evenly over the span, jittered, in
// increasing order of i, to the microsecond PostgreSQL stores.
func at(r *rand.Rand, i, n int) time.Time {
	offset := time.Duration((float64(i) + r.Float64()) / float64(n) * float64(span))
	return epoch.Add(offset).Truncate(time.Microsecond)
}

var (
	firstNames = []string{"Ada", "Alan", "Barbara", "Dennis", "Edsger", "Frances", "Grace", "Ken", "Leslie", "Margaret", "Niklaus", "Radia", "Rob", "Shafi", "Tony", "Yukihiro"}
	lastNames  = []string{"Allen", "Backus", "Codd", "Dijkstra", "Hamilton", "Hopper", "Hoare", "Kernighan", "Knuth", "Lamport", "Liskov", "Perlman", "Pike", "Ritchie", "Thompson", "Wirth"}
	adjectives = []string{"Small", "Large", "Red", "Blue", "Quiet", "Fast", "Sturdy", "Light", "Classic", "Modern"}
	nouns      = []string{"Kettle", "Lamp", "Chair", "Backpack", "Notebook", "Mug", "Keyboard", "Jacket", "Bicycle", "Teapot"}
	categories = []string{"books", "clothing", "electronics", "garden", "grocery", "home", "kitchen", "office", "outdoors", "sports", "toys", "travel"}
)

// userRows returns the users, id 1 (the busiest) first.
func userRows(s Scale, seed uint64) func() ([]any, error) {
	r := newRand(seed, streamUsers)
	id, n := 0, s.Users()
	return func() ([]any, error) {
		if id == n {
			return nil, nil
		}
		id++
		first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		return []any{
			int64(id),
			first + " " + last,
			fmt.Sprintf("user%d@example.com", id),
			epoch.Add(-time.Duration(r.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Microsecond),
		}, nil
	}
}

// productRows returns the products, each with 0 to 1,000 units in stock.
func productRows(s Scale, seed uint64) func() ([]any, error) {
	r, stock := newRand(seed, streamProducts), newRand(seed, streamStock)
	id, n := 0, s.Products()
	return func() ([]any, error) {
		if id == n {
			return nil, nil
		}
		id++
		name := fmt.Sprintf("%s %s #%d", adjectives[r.IntN(len(adjectives))], nouns[r.IntN(len(nouns))], id)
		// Prices spread from about 1 to 1,000 in a log scale: many cheap things, few dear ones.
		price := int64(100 * math.Pow(10, 3*r.Float64()))
		return []any{int64(id), name, categories[r.IntN(len(categories))], price - price%100 + 99, int32(stock.IntN(1001))}, nil
	}
}

// orderRows returns the orders in id order, which is also time order, as a
// serial id would be. Whose order each one is comes from a seeded shuffle of
// every user's share, so a user's orders are spread over the whole table, as
// in a real one.
func orderRows(s Scale, seed uint64) func() ([]any, error) {
	r := newRand(seed, streamOrders)
	owners := make([]int32, 0, s.Orders())
	for id := int64(1); id <= int64(s.TopOrders); id++ {
		for range s.OrdersOf(id) {
			owners = append(owners, int32(id))
		}
	}
	r.Shuffle(len(owners), func(i, j int) { owners[i], owners[j] = owners[j], owners[i] })
	i := 0
	return func() ([]any, error) {
		if i == len(owners) {
			return nil, nil
		}
		createdAt := at(r, i, len(owners))
		status := "delivered"
		switch age := float64(i) / float64(len(owners)); {
		case age > 0.999:
			status = "pending"
		case age > 0.995:
			status = "shipped"
		case r.IntN(50) == 0:
			status = "cancelled"
		}
		i++
		return []any{int64(i), int64(owners[i-1]), status, createdAt}, nil
	}
}

// orderItemRows returns every order's items: one to eight lines, most orders
// short, products drawn by popularity (a few bestsellers, a long tail).
func orderItemRows(s Scale, seed uint64) func() ([]any, error) {
	r := newRand(seed, streamOrderItems)
	lines := rand.NewZipf(r, 1.5, 1, 7)
	popular := rand.NewZipf(r, 1.1, 1, uint64(s.Products()-1))
	prices := productPrices(s, seed)
	orders := s.Orders()
	orderID, line, linesInOrder := int64(0), int32(0), int32(0)
	return func() ([]any, error) {
		if line == linesInOrder {
			if orderID == int64(orders) {
				return nil, nil
			}
			orderID, line, linesInOrder = orderID+1, 0, int32(1+lines.Uint64())
		}
		line++
		productID := int64(1 + popular.Uint64())
		quantity := int32(1)
		if r.IntN(10) == 0 {
			quantity += int32(r.IntN(4))
		}
		return []any{orderID, line, productID, quantity, prices[productID]}, nil
	}
}

// productPrices returns each product's price by id, as productRows makes them.
func productPrices(s Scale, seed uint64) []int64 {
	prices := make([]int64, s.Products()+1)
	next := productRows(s, seed)
	for row, _ := next(); row != nil; row, _ = next() {
		prices[row[0].(int64)] = row[3].(int64)
	}
	return prices
}

// postRows returns the posts in time order; a few users write most of them.
func postRows(s Scale, seed uint64) func() ([]any, error) {
	r := newRand(seed, streamPosts)
	authors := rand.NewZipf(r, 1.2, 1, uint64(s.Users()-1))
	id, n := 0, s.Posts()
	return func() ([]any, error) {
		if id == n {
			return nil, nil
		}
		createdAt := at(r, id, n)
		id++
		title := fmt.Sprintf("%s %s review #%d", adjectives[r.IntN(len(adjectives))], nouns[r.IntN(len(nouns))], id)
		return []any{int64(id), int64(1 + authors.Uint64()), title, createdAt}, nil
	}
}

// commentRows returns the comments, post by post: most posts have none or a
// few, a few have hundreds.
func commentRows(s Scale, seed uint64) func() ([]any, error) {
	r := newRand(seed, streamComments)
	perPost := rand.NewZipf(r, 2, 1, 500)
	posts := postRows(s, seed)
	var post []any
	id, left := int64(0), uint64(0)
	return func() ([]any, error) {
		for left == 0 {
			var err error
			if post, err = posts(); post == nil || err != nil {
				return nil, err
			}
			left = perPost.Uint64()
		}
		left--
		id++
		postedAt := post[3].(time.Time)
		createdAt := postedAt.Add(time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Microsecond)
		return []any{id, post[0], int64(1 + r.IntN(s.Users())), fmt.Sprintf("Comment %d", id), createdAt}, nil
	}
}
