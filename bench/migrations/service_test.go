package migrations

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"works-vs-scales/bench/benchkit"
)

// The service the benchmarks load runs in a process of its own, as a service
// does: the test binary again, with serviceEnv naming the database it
// serves, so that the load generator's goroutines and the service's do not
// share a Go runtime.

// serviceEnv holds the URL of the database a child serves.
const serviceEnv = "WVS_LESSON20_SERVICE_DB"

// servicePoolEnv holds the size of the child's pool: loadPool, or what a
// room's budget leaves (loadPools).
const servicePoolEnv = "WVS_LESSON20_SERVICE_POOL"

// servingPrefix starts the line a child prints once it serves.
const servingPrefix = "serving http://"

// startService starts the service on db's database in a child process, and
// returns its URL; the child is stopped when the benchmark ends, before the
// database is dropped. GET /orders?user=N reads the user's recent orders,
// POST /place?user=N places an order, POST /ship?order=N ships one; each
// answers 503 past loadDeadline.
func startService(b *testing.B, db *pgxpool.Pool, pool int32) string {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serviceEnv+"="+benchkit.ChildDatabaseURL(db), servicePoolEnv+"="+strconv.Itoa(int(pool)))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { // registered before it starts
		if cmd.Process == nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the service: %v", err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), servingPrefix) {
		b.Fatalf("the service did not say where it serves: %q %v", lines.Text(), lines.Err())
	}
	return "http://" + strings.TrimPrefix(lines.Text(), servingPrefix)
}

// runService serves the database at url until SIGTERM, and returns the
// process's exit status.
func runService(url string) int {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 2
	}
	size, err := strconv.Atoi(os.Getenv(servicePoolEnv))
	if err != nil || size < 1 {
		fmt.Fprintf(os.Stderr, "service: %s=%q: want the pool's size\n", servicePoolEnv, os.Getenv(servicePoolEnv))
		return 2
	}
	cfg.MaxConns = int32(size)
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 1
	}
	defer db.Close()
	// Every connection opened before the first request: the load's first
	// second measures the service, not its pool filling up.
	warm := make([]*pgxpool.Conn, 0, size)
	for range size {
		conn, err := db.Acquire(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "service:", err)
			return 1
		}
		warm = append(warm, conn)
	}
	for _, conn := range warm {
		conn.Release()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 1
	}
	server := &http.Server{Handler: serviceHandler(db), ReadHeaderTimeout: 5 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		_ = server.Close()
	}()
	fmt.Println(servingPrefix + ln.Addr().String())
	if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "service:", err)
		return 1
	}
	return 0
}

// serviceHandler answers the benchmark's requests from db.
func serviceHandler(db *pgxpool.Pool) http.Handler {
	handle := func(query, param string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id, err := strconv.ParseInt(r.URL.Query().Get(param), 10, 64)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), loadDeadline)
			defer cancel()
			rows, err := db.Query(ctx, query, id)
			if err == nil {
				rows.Close()
				err = rows.Err()
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			}
		}
	}
	const shipQuery = `UPDATE orders SET status = 'shipped' WHERE id = $1`
	mux := http.NewServeMux()
	mux.Handle("GET /orders", handle(ordersQuery, "user"))
	mux.Handle("POST /place", handle(placeOrderQuery, "user"))
	mux.Handle("POST /ship", handle(shipQuery, "order"))
	return mux
}
