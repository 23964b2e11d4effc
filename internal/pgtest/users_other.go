//go:build !unix

package pgtest

import (
	"fmt"
	"os"
)

// containerUsers, where there is no flock, leaves the container to be removed by hand.
type containerUsers struct{ name string }

func joinContainerUsers(name string) (*containerUsers, error) {
	return &containerUsers{name: name}, nil
}

func (u *containerUsers) leave(func() error) error {
	fmt.Fprintf(os.Stderr, "pgtest: container %s is left for the run's other test binaries (Ryuk is disabled); when they are done: docker rm -f %s\n", u.name, u.name)
	return nil
}
