//go:build unix

package pgtest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLastContainerUserRemovesIt: without the reaper, of the test binaries
// sharing the run's container, only the one that leaves last removes it, and
// one that joins afterwards starts the count afresh.
func TestLastContainerUserRemovesIt(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	removed := 0
	remove := func() error { removed++; return nil }
	first, err := joinContainerUsers("wvs-postgres-test")
	require.NoError(t, err)
	second, err := joinContainerUsers("wvs-postgres-test")
	require.NoError(t, err)

	require.NoError(t, first.leave(remove))
	require.Zero(t, removed, "removed while the second binary still used it")
	require.NoError(t, second.leave(remove))
	require.Equal(t, 1, removed, "the last binary to leave removes it")

	third, err := joinContainerUsers("wvs-postgres-test")
	require.NoError(t, err)
	require.NoError(t, third.leave(remove))
	require.Equal(t, 2, removed, "a binary alone removes what it started")
}
