// Package pagination lists a user's orders a page at a time, two ways.
//
// ListUserOrdersPage is what most tutorials call scalable: LIMIT and OFFSET on
// the orders, their items fetched for the page, and a total count. Its cost
// grows with the page's depth (OFFSET reads every row it skips) and with the
// list (COUNT reads all of it). ListUserOrdersAfter is keyset pagination: it
// seeks to where the last page ended, and costs the same on page 1 and page
// 10,000.
//
// Compare with works-vs-scales/naive/pagination.
package pagination
