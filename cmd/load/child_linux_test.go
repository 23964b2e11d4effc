package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"works-vs-scales/internal/pgtest"
)

// roleEnv makes the test binary play a part in TestAKilledLoadLeavesNoShopd
// instead of running the tests: "shopd", a service that answers every
// request, on the -addr it is given; "load", a load that starts that shopd
// as its child, prints the child's pid, and waits to be killed.
const roleEnv = "WORKSHOP_LOAD_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "shopd":
		for _, arg := range os.Args[1:] {
			if addr, ok := strings.CutPrefix(arg, "-addr="); ok {
				fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
			}
		}
		os.Exit(2)
	case "load":
		os.Setenv(roleEnv, "shopd")
		svc, err := children{bin: os.Args[0], dbURL: "postgres://unused", logs: os.Stderr}.start(context.Background(), "naive")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(svc.(*child).cmd.Process.Pid)
		select {}
	}
	pgtest.Main(m) // drops the harness's databases, and its container if it started one

}

// alive reports whether process pid runs: it exists and is not a zombie
// waiting for its new parent to reap it.
func alive(pid int) bool {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	return !strings.Contains(string(status), "State:\tZ")
}

func TestAKilledLoadLeavesNoShopd(t *testing.T) {
	load := exec.Command(os.Args[0])
	load.Env = append(os.Environ(), roleEnv+"=load")
	load.Stderr = os.Stderr
	out, err := load.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { load.Process.Kill(); load.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the load printed no child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the kill: a child left running is stopped anyway.
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if !alive(pid) {
		t.Fatalf("shopd %d is not running", pid)
	}
	if err := load.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	load.Wait()
	// The kernel signals the child as the load dies: a moment.
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("shopd %d still runs after its load was killed", pid)
	}
}
