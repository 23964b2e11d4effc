package pgtest

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNoPgBouncerSaysHowToGetOne(t *testing.T) {
	_, err := findPgBouncer(func(string) (string, error) { return "", exec.ErrNotFound })
	require.ErrorContains(t, err, "apt-get install pgbouncer or set WORKSHOP_PGBOUNCER_URL")
}

func TestPgBouncerIsLookedForInUsrSbin(t *testing.T) {
	binary, err := findPgBouncer(func(name string) (string, error) {
		if name == "/usr/sbin/pgbouncer" {
			return name, nil
		}
		return "", errors.New("not on PATH")
	})
	require.NoError(t, err)
	require.Equal(t, "/usr/sbin/pgbouncer", binary)
}
