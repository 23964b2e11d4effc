package capstone

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway/gatewaytest"
)

// Lesson 17's hostile corpus: testdata/hostile.jsonl, one request a line,
// sent to every wiring of cmd/shopd, each in a process of its own, and what
// each wiring answered, charged and held counted from the answers, the test
// gateway's records, the database's rows and the process's own memory.
// This file keeps its helpers to itself.

var hostileOut = flag.String("hostile-out", "", "write lesson 17's table of the hostile corpus to this file")

// hostileCorpus is the corpus's file.
const hostileCorpus = "testdata/hostile.jsonl"

// hostileRequest is one line of the corpus: a request, or a few sent at
// once, what the scalable wiring must answer, and what no wiring should
// cause. Every text may hold placeholders (hostileVars): {key}, a key of
// the line's own; {user}, {other_user}, {biggest}, {unknown_user};
// {cursor}, a page token for {user}, and {cursor_tampered}; {host};
// {declined_cents}, an amount the gateway declines; {rep:N:s}, s N times;
// {byte:XX}, the byte XX (what a JSON file cannot hold as text).
type hostileRequest struct {
	Category string `json:"category"`
	Name     string `json:"name"`
	// The request: Method (GET if empty) and Path, with Headers, or, for a
	// body without Headers, Content-Type application/json and the line's
	// Idempotency-Key. Host, X-Forwarded-For (a client of the line's own),
	// Content-Length (or chunked) and Connection: close are added.
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`
	// The body: Body as it is, or a payment padded to BodySize bytes (its
	// reference; or, with Pad "before", whitespace before it), sent in
	// chunks if Chunked.
	Body     *string `json:"body"`
	BodySize int64   `json:"body_size"`
	Pad      string  `json:"pad"`
	Chunked  bool    `json:"chunked"`
	// Raw, if not empty, is the whole request, sent as it is.
	Raw string `json:"raw"`
	// StallAfter, if not 0, sends that much of the request (-1: all of
	// it), then waits, sending nothing more, for the server to answer or
	// hang up. Such lines are sent together, after the others, and the
	// WhileStalled lines while they wait.
	StallAfter   int  `json:"stall_after"`
	WhileStalled bool `json:"while_stalled"`
	// Copies sends the request from that many clients at once; Race sends
	// each of its bodies from a client of its own, at once.
	Copies int      `json:"copies"`
	Race   []string `json:"race"`
	// Want is what the scalable wiring may answer (0: no answer, the
	// connection closed). Charges is how many charges the line may cause (a
	// payment done right); any more are charges for bad input. MustNot says
	// what no wiring should cause, in words.
	Want    []int  `json:"want"`
	Charges int    `json:"charges"`
	MustNot string `json:"must_not"`
}

// id names the line: its category and its name.
func (r hostileRequest) id() string { return r.Category + ": " + r.Name }

// loadHostileCorpus reads the corpus, refusing a line it does not
// understand.
func loadHostileCorpus(tb testing.TB) []hostileRequest {
	tb.Helper()
	data, err := os.ReadFile(hostileCorpus)
	require.NoError(tb, err)
	var corpus []hostileRequest
	names := map[string]bool{}
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var r hostileRequest
		require.NoError(tb, dec.Decode(&r), "%s:%d", hostileCorpus, i+1)
		require.NotEmpty(tb, r.Category, "%s:%d: no category", hostileCorpus, i+1)
		require.False(tb, names[r.id()], "%s:%d: %q twice", hostileCorpus, i+1, r.id())
		names[r.id()] = true
		require.NotEmpty(tb, r.Want, "%s:%d: no want", hostileCorpus, i+1)
		for _, status := range r.Want {
			require.Less(tb, status, 500, "%s:%d: want %v: the scalable wiring answers no line with a 5xx", hostileCorpus, i+1, r.Want)
		}
		require.NotEmpty(tb, r.MustNot, "%s:%d: no must_not", hostileCorpus, i+1)
		require.True(tb, (r.Raw != "" || r.StallAfter != 0) != (r.Path != ""), "%s:%d: a path or a raw request", hostileCorpus, i+1)
		corpus = append(corpus, r)
	}
	return corpus
}

// The corpus's settings: the service's round trip to the database, what a
// client waits for an answer, how long a stalled client waits for the
// server to hang up, and how long the scalable wiring is given, after the
// corpus, to finish the payments it took.
const (
	hostileRTT     = time.Millisecond
	hostileTimeout = time.Minute
	hostileHold    = 20 * time.Second
	hostileSettle  = 30 * time.Second
	// hostileDeclined is the amount the test gateway declines.
	hostileDeclined = 666
)

// hostileControls is the category of the lines that are not hostile: what
// the service must serve, to show the corpus reaches it.
const hostileControls = "controls"

// hostileVars returns the placeholders' values for a service on host,
// whose page tokens cursor gave ("" for a wiring without pages).
func hostileVars(host, cursor string) map[string]string {
	user, _ := shop.Small.UserWithOrders(100)
	other, _ := shop.Small.UserWithOrders(10)
	biggest, _ := shop.Small.UserWithOrders(shop.Small.TopOrders)
	tampered := "none"
	if cursor == "" {
		cursor = "none"
	} else {
		b := []byte(cursor)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		tampered = string(b)
	}
	return map[string]string{
		"user": strconv.FormatInt(user, 10), "other_user": strconv.FormatInt(other, 10),
		"biggest": strconv.FormatInt(biggest, 10), "unknown_user": strconv.Itoa(shop.Small.Users() + 1),
		"cursor": url.QueryEscape(cursor), "cursor_tampered": url.QueryEscape(tampered),
		"host": host, "declined_cents": strconv.Itoa(hostileDeclined),
	}
}

var placeholder = regexp.MustCompile(`\{(?:rep:(\d+):([^}]*)|byte:([0-9a-f]{2})|([a-z_]+))\}`)

// expand fills the placeholders of s.
func expand(tb testing.TB, s string, vars map[string]string, key string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		p := placeholder.FindStringSubmatch(m)
		switch {
		case p[1] != "":
			n, err := strconv.Atoi(p[1])
			require.NoError(tb, err)
			return strings.Repeat(p[2], n)
		case p[3] != "":
			b, err := strconv.ParseUint(p[3], 16, 8)
			require.NoError(tb, err)
			return string([]byte{byte(b)})
		case p[4] == "key":
			return key
		}
		v, ok := vars[p[4]]
		require.True(tb, ok, "no placeholder %s", m)
		return v
	})
}

// hostileWire is one request as its client sends it.
type hostileWire struct {
	head []byte    // the request line and headers, or all of a raw request
	body io.Reader // nil for none
}

// wires returns the requests the line sends: one, Copies of it, or one a
// body of Race; client numbers the line, for its X-Forwarded-For.
func (r hostileRequest) wires(tb testing.TB, vars map[string]string, client int) []hostileWire {
	key := fmt.Sprintf("hostile-%d", client)
	if r.Raw != "" || r.StallAfter != 0 {
		w := hostileWire{head: []byte(expand(tb, r.Raw, vars, key))}
		return slices.Repeat([]hostileWire{w}, max(1, r.Copies))
	}
	bodies := r.Race
	if len(bodies) == 0 {
		body := ""
		if r.Body != nil {
			body = *r.Body
		}
		bodies = slices.Repeat([]string{body}, max(1, r.Copies))
	}
	var wires []hostileWire
	for _, b := range bodies {
		var head bytes.Buffer
		method := r.Method
		if method == "" {
			method = http.MethodGet
		}
		fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nX-Forwarded-For: 10.%d.%d.%d\r\n", method, expand(tb, r.Path, vars, key), vars["host"], client>>16&255, client>>8&255, client&255)
		hasBody := r.Body != nil || r.BodySize > 0 || len(r.Race) > 0
		headers := r.Headers
		if headers == nil && hasBody {
			headers = [][2]string{{"Content-Type", "application/json"}, {"Idempotency-Key", "{key}"}}
		}
		for _, h := range headers {
			fmt.Fprintf(&head, "%s: %s\r\n", h[0], expand(tb, h[1], vars, key))
		}
		var body io.Reader
		var size int64
		switch {
		case r.BodySize > 0:
			body, size = paddedPayment(r.BodySize, r.Pad == "before"), r.BodySize
		case hasBody:
			text := expand(tb, b, vars, key)
			body, size = strings.NewReader(text), int64(len(text))
		}
		if body != nil && r.Chunked {
			head.WriteString("Transfer-Encoding: chunked\r\n")
			body = chunked(body)
		} else if body != nil {
			fmt.Fprintf(&head, "Content-Length: %d\r\n", size)
		}
		head.WriteString("Connection: close\r\n\r\n")
		wires = append(wires, hostileWire{head: head.Bytes(), body: body})
	}
	return wires
}

// paddedPayment returns a payment of user 5 of exactly size bytes: its
// reference padded, or whitespace before it.
func paddedPayment(size int64, before bool) io.Reader {
	const start, end = `{"user_id": 5, "amount_cents": 1250, "currency": "EUR", "reference": "`, `"}`
	if before {
		payment := start + "padded" + end
		return io.MultiReader(repeated(' ', size-int64(len(payment))), strings.NewReader(payment))
	}
	return io.MultiReader(strings.NewReader(start), repeated('x', size-int64(len(start)+len(end))), strings.NewReader(end))
}

// repeated returns n bytes of c, made as they are read.
func repeated(c byte, n int64) io.Reader {
	return io.LimitReader(byteReader(c), max(0, n))
}

type byteReader byte

func (c byteReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// chunked returns body in HTTP/1.1's chunked encoding.
func chunked(body io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		cw := httputil.NewChunkedWriter(pw)
		_, err := io.Copy(cw, body)
		if err == nil {
			err = cw.Close()
		}
		if err == nil {
			_, err = pw.Write([]byte("\r\n"))
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// hostileAnswer is what the service answered a request: its status, or 0
// for none (the connection closed, or reset), or -1 for a stalled client
// the server still held after hostileHold; and the start of its body.
type hostileAnswer struct {
	status int
	body   string
}

// connect dials the service.
func connect(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(tb, err)
	return conn
}

// exchange sends w on conn and reads the answer. If release is not nil, it
// sends all of w but its last byte, calls ready, and sends the last byte
// once release is closed.
func exchange(conn net.Conn, w hostileWire, ready func(), release <-chan struct{}) hostileAnswer {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hostileTimeout))
	written := make(chan struct{})
	go func() {
		defer close(written)
		var all io.Reader = bytes.NewReader(w.head)
		if w.body != nil {
			all = io.MultiReader(all, w.body)
		}
		if release != nil {
			b, _ := io.ReadAll(all)
			_, err := conn.Write(b[:len(b)-1])
			ready()
			if err != nil {
				return
			}
			<-release
			all = bytes.NewReader(b[len(b)-1:])
		}
		io.Copy(conn, all) // an error is the server hanging up: its answer says why
	}()
	a := readAnswer(conn, nil)
	conn.Close()
	<-written
	return a
}

// stall sends the first n bytes of w (all if n < 0) on conn, tells sent,
// and waits for the server to answer or hang up, for hostileHold at most.
func stall(conn net.Conn, w hostileWire, n int, sent func()) hostileAnswer {
	defer conn.Close()
	b := w.head
	if n >= 0 && n < len(b) {
		b = b[:n]
	}
	_, err := conn.Write(b)
	sent()
	if err != nil {
		return hostileAnswer{}
	}
	conn.SetDeadline(time.Now().Add(hostileHold))
	return readAnswer(conn, func(err error) bool {
		var netErr net.Error
		return errors.As(err, &netErr) && netErr.Timeout()
	})
}

// readAnswer reads an HTTP answer from conn: its status and the start of
// its body; 0 if none came, -1 if held says the read's error means the
// server still holds the connection.
func readAnswer(conn net.Conn, held func(error) bool) hostileAnswer {
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(br, nil) // an interim answer (100 Continue): the answer follows
	}
	if err != nil {
		if held != nil && held(err) {
			return hostileAnswer{status: -1}
		}
		return hostileAnswer{}
	}
	defer resp.Body.Close()
	start, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	io.Copy(io.Discard, resp.Body)
	return hostileAnswer{status: resp.StatusCode, body: string(start)}
}

// hostileResult is what one wiring did with the corpus.
type hostileResult struct {
	impl         string
	answers      map[string][]hostileAnswer // by line
	badCharges   map[string]int             // charges beyond what the line may cause, by category
	lateCharges  int                        // made after the corpus, by the background work
	orphans      int                        // charges no payment row records
	startRSS     int64                      // bytes, once serving
	peakRSS      int64                      // bytes, VmHWM
	exitedEarly  bool
	lines, sends int
}

// buildShopd builds cmd/shopd into a directory the test removes.
func buildShopd(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "shopd")
	out, err := exec.Command("go", "build", "-o", bin, "works-vs-scales/cmd/shopd").CombinedOutput()
	require.NoError(tb, err, "go build cmd/shopd:\n%s", out)
	return bin
}

// databaseURL returns the URL of the database db's connections go to.
func databaseURL(db *pgxpool.Pool) string {
	cc := db.Config().ConnConfig
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), Path: "/" + cc.Database,
		RawQuery: "sslmode=disable"}
	if cc.Password != "" {
		u.User = url.UserPassword(cc.User, cc.Password)
	} else {
		u.User = url.User(cc.User)
	}
	return u.String()
}

// hostileService is a cmd/shopd child process.
type hostileService struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	mu     sync.Mutex
	log    []string // its last lines on stderr
}

// startHostileService runs cmd/shopd's wiring impl on db and the gateway,
// in a process of its own, and waits until it serves. It is stopped when
// the test ends.
func startHostileService(t *testing.T, bin, impl string, db *pgxpool.Pool, gw *gatewaytest.Server) *hostileService {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(databaseURL(db)) // the pool cmd/shopd opens
	require.NoError(t, err)
	benchkit.SkipAboveBudget(t, shopd.Conns(shopd.Config{Impl: impl, DB: cfg})) // a room's budget (WORKSHOP_MAX_CONNS)
	s := &hostileService{exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "-impl", impl, "-db", databaseURL(db), "-gateway", gw.URL(),
		"-addr", "127.0.0.1:0", "-admin-addr", "", "-rtt", hostileRTT.String(), "-grace", "5s",
		"-client-header", "X-Forwarded-For", "-trace-sample", "0")
	stderr, err := s.cmd.StderrPipe()
	require.NoError(t, err)
	serving := make(chan string, 1)
	t.Cleanup(func() {
		if s.cmd.Process == nil {
			return
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	require.NoError(t, s.cmd.Start())
	address := regexp.MustCompile(`serving.*http://(127\.0\.0\.1:\d+)`)
	go func() {
		defer close(s.exited)
		scanner := bufio.NewScanner(stderr)
		scanner.Buffer(make([]byte, 64<<10), 1<<20)
		for scanner.Scan() {
			line := scanner.Text()
			if m := address.FindStringSubmatch(line); m != nil {
				serving <- m[1]
			}
			s.mu.Lock()
			s.log = append(s.log, line)
			if len(s.log) > 50 {
				s.log = s.log[1:]
			}
			s.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		s.cmd.Wait()
	}()
	select {
	case s.addr = <-serving:
	case <-s.exited:
		t.Fatalf("cmd/shopd -impl %s exited before serving:\n%s", impl, s.lastLog())
	case <-time.After(time.Minute):
		t.Fatalf("cmd/shopd -impl %s did not serve within a minute:\n%s", impl, s.lastLog())
	}
	return s
}

func (s *hostileService) lastLog() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, "\n")
}

// memory returns the process's resident set now and its peak so far
// (/proc/PID/status: VmRSS, VmHWM), in bytes.
func (s *hostileService) memory(tb testing.TB) (now, peak int64) {
	tb.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	require.NoError(tb, err)
	read := func(field string) int64 {
		m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB$`).FindSubmatch(status)
		require.NotNil(tb, m, "no %s in /proc/PID/status", field)
		kb, err := strconv.ParseInt(string(m[1]), 10, 64)
		require.NoError(tb, err)
		return kb << 10
	}
	return read("VmRSS"), read("VmHWM")
}

// firstCursor returns the page token of {user}'s first page of ten, or ""
// for a wiring without pages.
func firstCursor(tb testing.TB, host string) string {
	tb.Helper()
	user, _ := shop.Small.UserWithOrders(100)
	url := fmt.Sprintf("http://%s/users/%d/orders?limit=10", host, user)
	// This page only sets the corpus up: a fresh service on a starved
	// machine may miss its deadline for it (503), so it is asked again
	// while it answers 503, and must then answer 200.
	for try := 1; ; try++ {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(tb, err)
		req.Header.Set("X-Forwarded-For", "10.255.255.254")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(tb, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(tb, err)
		if resp.StatusCode == http.StatusServiceUnavailable && try < 20 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		require.Equal(tb, http.StatusOK, resp.StatusCode, "the first page of user %d, to start the corpus's cursors from (try %d): %s", user, try, body)
		var page shopd.OrdersPage
		require.NoError(tb, json.Unmarshal(body, &page), "the first page of user %d: %s", user, body)
		// A wiring without cursors (the naive ones) answers none: "".
		return page.NextCursor
	}
}

// hostileRun sends the corpus to the wiring impl and counts.
func hostileRun(t *testing.T, bin, impl string, corpus []hostileRequest) hostileResult {
	db := pgtest.ShopClone(t, shop.Small)
	gw := gatewaytest.Start()
	t.Cleanup(gw.Close)
	gw.Decline(hostileDeclined)
	svc := startHostileService(t, bin, impl, db, gw)
	r := hostileResult{impl: impl, answers: map[string][]hostileAnswer{}, badCharges: map[string]int{}, lines: len(corpus)}
	r.startRSS, _ = svc.memory(t)
	vars := hostileVars(svc.addr, firstCursor(t, svc.addr))

	charged := func() int { return len(gw.Charges()) }
	// send sends line i's requests, at once if there are several, and
	// returns its answers.
	send := func(i int, line hostileRequest) []hostileAnswer {
		wires := line.wires(t, vars, i+1)
		r.sends += len(wires)
		if len(wires) == 1 {
			return []hostileAnswer{exchange(connect(t, svc.addr), wires[0], nil, nil)}
		}
		// Every client sends all but the last byte, then all send it at once.
		release := make(chan struct{})
		answers := make([]hostileAnswer, len(wires))
		conns := make([]net.Conn, len(wires))
		for j := range wires {
			conns[j] = connect(t, svc.addr)
		}
		var wg, ready sync.WaitGroup
		ready.Add(len(wires))
		for j, w := range wires {
			wg.Go(func() { answers[j] = exchange(conns[j], w, ready.Done, release) })
		}
		ready.Wait() // every client has sent all but its last byte
		close(release)
		wg.Wait()
		return answers
	}
	for i, line := range corpus {
		if line.StallAfter != 0 || line.WhileStalled {
			continue
		}
		before := charged()
		r.answers[line.id()] = send(i, line)
		r.badCharges[line.Category] += max(0, charged()-before-line.Charges)
	}

	// The stalled clients, all at once; while they wait, the lines that
	// must be served meanwhile.
	before, allowed := charged(), 0
	var stalled sync.WaitGroup
	var mu sync.Mutex
	var sent sync.WaitGroup
	for i, line := range corpus {
		if line.StallAfter == 0 {
			continue
		}
		for _, w := range line.wires(t, vars, i+1) {
			r.sends++
			conn := connect(t, svc.addr)
			sent.Add(1)
			stalled.Go(func() {
				a := stall(conn, w, line.StallAfter, sent.Done)
				mu.Lock()
				r.answers[line.id()] = append(r.answers[line.id()], a)
				mu.Unlock()
			})
		}
	}
	sent.Wait()
	for i, line := range corpus {
		if line.WhileStalled {
			answers := send(i, line)
			mu.Lock() // the stalled clients' answers go in the same map
			r.answers[line.id()] = answers
			mu.Unlock()
			allowed += line.Charges
		}
	}
	stalled.Wait()
	r.badCharges["slow clients"] += max(0, charged()-before-allowed)

	// What the service took, it finishes: nothing pending or queued.
	settled := charged()
	deadline := time.Now().Add(hostileSettle)
	for time.Now().Before(deadline) && drillUnfinished(t, db) != 0 {
		time.Sleep(100 * time.Millisecond)
	}
	r.lateCharges = charged() - settled
	select {
	case <-svc.exited:
		r.exitedEarly = true
		t.Logf("cmd/shopd -impl %s exited during the corpus:\n%s", impl, svc.lastLog())
	default:
		_, r.peakRSS = svc.memory(t)
	}
	rows, err := db.Query(context.Background(), `SELECT charge_id FROM payments WHERE charge_id IS NOT NULL`)
	require.NoError(t, err)
	recorded := map[string]bool{}
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		recorded[id] = true
	}
	require.NoError(t, rows.Err())
	for _, c := range gw.Charges() {
		if !recorded[c.ID] {
			r.orphans++
		}
	}
	return r
}

// classes counts the answers by class: 2xx, 3xx, 4xx, 5xx, none (0),
// held (-1); in categories, if not empty.
func (r hostileResult) classes(corpus []hostileRequest, categories ...string) map[string]int {
	n := map[string]int{}
	for _, line := range corpus {
		if len(categories) > 0 && !slices.Contains(categories, line.Category) {
			continue
		}
		for _, a := range r.answers[line.id()] {
			switch {
			case a.status == 0:
				n["none"]++
			case a.status < 0:
				n["held"]++
			default:
				n[fmt.Sprintf("%dxx", a.status/100)]++
			}
		}
	}
	return n
}

func (r hostileResult) totalBadCharges() int {
	n := r.lateCharges
	for _, c := range r.badCharges {
		n += c
	}
	return n
}

func TestShopdHostileCorpus(t *testing.T) {
	corpus := loadHostileCorpus(t)
	hostile := 0
	for _, line := range corpus {
		if line.Category != hostileControls {
			hostile++
		}
	}
	require.GreaterOrEqual(t, hostile, 150, "a corpus of at least 150 hostile requests")
	bin := buildShopd(t)
	results := map[string]hostileResult{}
	for _, impl := range shopd.Impls() {
		t.Run("impl="+impl, func(t *testing.T) {
			r := hostileRun(t, bin, impl, corpus)
			results[impl] = r
			c := r.classes(corpus)
			t.Logf("%s: answers %v, charges for bad input %d (late %d), orphan charges %d, RSS %d MiB at start, %d MiB at peak",
				impl, c, r.totalBadCharges(), r.lateCharges, r.orphans, r.startRSS>>20, r.peakRSS>>20)
			for _, line := range corpus {
				if line.Category == hostileControls {
					for _, a := range r.answers[line.id()] {
						assert.Equal(t, http.StatusOK, a.status, "%s: the control %q is served: %s", impl, line.Name, a.body)
					}
				}
			}
			if impl != shopd.Scalable {
				return // the naive wirings fail as they fail: the table shows it
			}
			assert.False(t, r.exitedEarly, "the service is still up")
			assert.Zero(t, c["5xx"], "no 5xx")
			assert.Zero(t, c["held"], "no stalled client held past the read timeout")
			assert.Zero(t, r.totalBadCharges(), "no charge for bad input: %v, %d late", r.badCharges, r.lateCharges)
			assert.Zero(t, r.orphans, "no charge without its row")
			for _, line := range corpus {
				for _, a := range r.answers[line.id()] {
					assert.Contains(t, line.Want, a.status, "%s / %s: answered %d: %s", line.Category, line.Name, a.status, a.body)
				}
			}
		})
	}
	if *hostileOut != "" && len(results) == len(shopd.Impls()) {
		writeHostileTable(t, *hostileOut, corpus, results)
	}
}

// writeHostileTable writes lesson 17's tables of the corpus: each wiring's
// answers, money and memory, then the categories where they went wrong.
func writeHostileTable(t *testing.T, path string, corpus []hostileRequest, results map[string]hostileResult) {
	t.Helper()
	impls := shopd.Impls()
	var out strings.Builder
	fmt.Fprintf(&out, "Made by `go test -count 1 -run TestShopdHostileCorpus ./bench/capstone -args -hostile-out=...` on %s, %s: each wiring is `cmd/shopd` in a process of its own, with %v added to each round trip to the database.\n\n",
		pgtest.ServerVersion(t), time.Now().UTC().Format(time.DateOnly), hostileRTT)
	categories := []string{}
	lines := map[string]int{}
	for _, line := range corpus {
		if lines[line.Category] == 0 {
			categories = append(categories, line.Category)
		}
		lines[line.Category]++
	}
	r0 := results[impls[0]]
	fmt.Fprintf(&out, "The corpus: %d lines, %d requests (%d hostile lines in %d categories, and %d controls a service must serve).\n\n",
		r0.lines, r0.sends, r0.lines-lines[hostileControls], len(categories)-1, lines[hostileControls])
	fmt.Fprintf(&out, "| | %s |\n|---|%s\n", strings.Join(impls, " | "), strings.Repeat("---|", len(impls)))
	row := func(what string, value func(hostileResult) string) {
		fmt.Fprintf(&out, "| %s |", what)
		for _, impl := range impls {
			fmt.Fprintf(&out, " %s |", value(results[impl]))
		}
		out.WriteString("\n")
	}
	class := func(c string) func(hostileResult) string {
		return func(r hostileResult) string { return strconv.Itoa(r.classes(corpus)[c]) }
	}
	row("answered 2xx", class("2xx"))
	row("answered 3xx (a path cleaned)", class("3xx"))
	row("answered 4xx", class("4xx"))
	row("**answered 5xx**", class("5xx"))
	row("no answer (the connection closed)", class("none"))
	row("**charges for bad input**", func(r hostileResult) string { return strconv.Itoa(r.totalBadCharges()) })
	row("**orphan charges (charged, no row)**", func(r hostileResult) string { return strconv.Itoa(r.orphans) })
	row("RSS once serving", func(r hostileResult) string { return fmt.Sprintf("%d MiB", r.startRSS>>20) })
	row("**peak RSS**", func(r hostileResult) string {
		if r.exitedEarly {
			return "exited"
		}
		return fmt.Sprintf("%d MiB", r.peakRSS>>20)
	})
	fmt.Fprintf(&out, "\nBy category, where a wiring answered 5xx, charged for bad input or gave no answer (5xx / charges / no answer):\n\n")
	fmt.Fprintf(&out, "| category | lines | %s |\n|---|---|%s\n", strings.Join(impls, " | "), strings.Repeat("---|", len(impls)))
	for _, category := range categories {
		fmt.Fprintf(&out, "| %s | %d |", category, lines[category])
		for _, impl := range impls {
			r := results[impl]
			c := r.classes(corpus, category)
			if c["5xx"] == 0 && r.badCharges[category] == 0 && c["none"] == 0 {
				out.WriteString(" |")
				continue
			}
			fmt.Fprintf(&out, " %d / %d / %d |", c["5xx"], r.badCharges[category], c["none"])
		}
		out.WriteString("\n")
	}
	require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
}
