// Package races sells the shop's products so that many buyers at once sell
// no more than there is, and shows the other correct answers side by side:
//
//   - Buy checks and writes in one statement, UPDATE … WHERE stock >= $2:
//     the row lock the UPDATE takes makes every other buyer of the product
//     wait, then see the stock left.
//   - BuyForUpdate locks the row when it reads it (SELECT … FOR UPDATE).
//   - BuyOptimistic reads without a lock and writes only if the row's version
//     is still the one it read, trying again if not.
//   - BuySerializable runs the naive read, check and write in a SERIALIZABLE
//     transaction and tries again when PostgreSQL fails it (SQLSTATE 40001).
//
// BuyBasket locks a basket's products in one global order, by id, so that
// two baskets cannot deadlock. Counter, MutexCounter and ShardedCounter count
// from many goroutines without losing increments. Coupons redeems a coupon
// once per user, decided by a unique key.
//
// Compare with works-vs-scales/naive/races.
package races
