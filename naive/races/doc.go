// Package races sells the shop's products the way that works first, one
// caller at a time: Buy reads the stock, checks it in Go and writes what is
// left; BuyBasket locks the basket's products in the order the caller gave
// them; Counter counts with a plain int; Coupons checks, then inserts.
//
// Each is correct for one caller and wrong for many at once: two buyers read
// the same stock and both sell the last unit, two baskets given in opposite
// orders deadlock, two goroutines lose each other's increments, and two
// requests redeem one coupon twice.
//
// Compare with works-vs-scales/scalable/races.
package races
