package shop

import "embed"

// Source holds the files of this package that build the shop: the generator,
// the loader, the schema and the indexes (and the package's tests, which a
// reader of it skips). The workshop's harness names its seeded templates by a
// hash of it, so a change to how the shop is built is never served a template
// built the old way, whether or not GeneratorVersion was bumped.
//
//go:embed *.go *.sql
var Source embed.FS
