package shopd_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServiceLinksNoTestCode: the service and its load tool are production
// code, and link none of the tests' (the harness, testing, testcontainers and
// the Docker client under it), as go list -deps shows.
func TestServiceLinksNoTestCode(t *testing.T) {
	for _, cmd := range []string{"works-vs-scales/cmd/shopd", "works-vs-scales/cmd/load"} {
		out, err := exec.Command("go", "list", "-deps", cmd).CombinedOutput()
		require.NoError(t, err, "go list -deps %s:\n%s", cmd, out)
		deps := strings.Fields(string(out))
		require.Contains(t, deps, "works-vs-scales/internal/shopd", "the list is %s's", cmd)
		for _, dep := range deps {
			for _, banned := range []string{"testing", "testing/", "github.com/testcontainers/", "github.com/moby/", "works-vs-scales/internal/pgtest", "works-vs-scales/internal/redistest"} {
				if dep == banned || strings.HasSuffix(banned, "/") && strings.HasPrefix(dep, banned) {
					t.Errorf("%s links %s: production code imports nothing of the tests", cmd, dep)
				}
			}
		}
	}
}
