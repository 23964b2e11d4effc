// Package harness tests what every lesson's numbers stand on: the shop the
// harness seeds, its copies, and several runs sharing one server. It is a
// test binary of its own, as every lesson's is, so that it starts runs of
// itself (TestRunsShareOneServer).
package harness

import (
	"testing"

	"works-vs-scales/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
