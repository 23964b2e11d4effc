// Package pagination lists a user's orders the way that works first: all of
// them at once, and, when that gets slow, pages of the joined rows with LIMIT
// and OFFSET. The first costs memory and time in proportion to the user's
// history; the second cuts orders in half at page boundaries.
//
// Compare with works-vs-scales/scalable/pagination.
package pagination
