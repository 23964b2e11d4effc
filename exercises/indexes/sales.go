// Package indexes is lesson 3's exercise: yours to change.
//
// A product page shows what the product sold (indexes.ProductSales in
// works-vs-scales/naive/indexes). Without an index it reads every order item
// of the shop. Write the index it needs in ProductSalesIndex, then check:
//
//	go test -tags exercise -run Exercise03 ./bench/indexes
//
// The check creates your index on a copy of the shop and reads the plan of
// ProductSales: no sequential scan, and only the product's rows read; if not,
// it says what the catalog shows of your index.
// One answer is in works-vs-scales/scalable/indexes.
package indexes

// ProductSalesIndex is the CREATE INDEX statement that ProductSales needs.
const ProductSalesIndex = "" // write me
