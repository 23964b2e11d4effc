package overload_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"works-vs-scales/scalable/overload"
	"works-vs-scales/shop"
)

// TestAdmitServesAClientItsRateWhenItSendsManyAtOnce: a client that sends
// from many connections at once, flat out, is served its burst and then its
// rate, no less (nor more): 16 senders, each asking every 2 ms for 10
// seconds of the bubble's clock, at 20 a second with a burst of 40.
func TestAdmitServesAClientItsRateWhenItSendsManyAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			senders = 16
			perSec  = 20
			burst   = 40
			seconds = 10
		)
		var served atomic.Int64
		h, err := overload.Admit(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }),
			overload.Limits{Concurrency: senders, PerClient: perSec, Burst: burst})
		if err != nil {
			t.Fatal(err)
		}
		end := time.Now().Add(seconds * time.Second)
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				for time.Now().Before(end) {
					r := httptest.NewRequest(http.MethodGet, "/", nil)
					r.RemoteAddr = "192.0.2.1:1234" // one client
					h.ServeHTTP(httptest.NewRecorder(), r)
					time.Sleep(2 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		want := int64(burst + perSec*seconds)
		if got := served.Load(); got < want-1 || got > want+1 {
			t.Errorf("served %d requests in %d s, want %d (burst %d, then %d a second)", got, seconds, want, burst, perSec)
		}
	})
}

// twoHeldRoutes admits two routes, orders and products, through a: each
// holds its request in its handler until release is closed, and entered
// counts the handlers entered.
func twoHeldRoutes(t *testing.T, a *overload.Admission) (orders, products http.Handler, entered *atomic.Int64, release chan struct{}) {
	t.Helper()
	release = make(chan struct{})
	entered = new(atomic.Int64)
	held := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		entered.Add(1)
		<-release
	})
	var err error
	if orders, err = a.Admit(held); err != nil {
		t.Fatal(err)
	}
	if products, err = a.Admit(held); err != nil {
		t.Fatal(err)
	}
	return orders, products, entered, release
}

// TestAdmissionSharesItsTurnsAndQueueAcrossHandlers: two routes on one
// pool, admitted through one Admission of one turn and one place in the
// queue. A request held on the first route takes the turn; one on the
// second waits in the queue, its handler not entered; a third, on the
// first, is refused at once, the queue being full; releasing the first
// gives the waiting one the turn. Admitted apart, each route would have
// served a request at once: two on a pool of one connection.
func TestAdmissionSharesItsTurnsAndQueueAcrossHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, err := overload.NewAdmission(overload.Limits{Concurrency: 1, Queue: 1, QueueTimeout: time.Minute, RetryAfter: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		orders, products, entered, release := twoHeldRoutes(t, a)
		serve := func(h http.Handler) <-chan int {
			code := make(chan int, 1)
			go func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				code <- rec.Code
			}()
			return code
		}

		first := serve(orders)
		synctest.Wait() // the first holds the turn, in its handler
		second := serve(products)
		synctest.Wait() // the second is durably blocked: waiting for a turn, or in its handler
		if n := entered.Load(); n != 1 {
			t.Fatalf("%d handlers entered, want 1: the routes share one turn", n)
		}
		rec := httptest.NewRecorder()
		orders.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("third request: status %d, want 503: the routes share one place in the queue", rec.Code)
		}
		if got := rec.Header().Get("Retry-After"); got != "1" {
			t.Errorf("third request: Retry-After %q, want 1", got)
		}

		close(release)
		if code := <-first; code != http.StatusOK {
			t.Errorf("first request: status %d, want 200", code)
		}
		if code := <-second; code != http.StatusOK {
			t.Errorf("second request: status %d, want 200 once the first gave its turn back", code)
		}
		if n := entered.Load(); n != 2 {
			t.Errorf("%d handlers entered, want 2: the first and the one that waited", n)
		}
	})
}

// TestAdmissionHoldsAClientToItsTurnsAtOnce: one client's slow requests,
// two on each of two routes of one Admission of four turns, each held in
// its handler. With PerClientAtOnce 2 its first two take two turns, on
// either route; its next is refused at once with 429, its handler not
// entered, and costs no token of its rate; another client is served at
// once, a turn being free. Once one of the first client's requests ends, it
// is admitted again, on its rate's second token. Without PerClientAtOnce,
// the first client within its rate would take all four turns.
func TestAdmissionHoldsAClientToItsTurnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, err := overload.NewAdmission(overload.Limits{
			Concurrency: 4, Queue: 4, QueueTimeout: time.Minute, RetryAfter: 3 * time.Second,
			PerClient: 0.001, Burst: 2, PerClientAtOnce: 2,
		})
		if err != nil {
			t.Fatal(err)
		}
		orders, products, entered, release := twoHeldRoutes(t, a)
		serve := func(h http.Handler, remote string) <-chan *httptest.ResponseRecorder {
			answer := make(chan *httptest.ResponseRecorder, 1)
			go func() {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = remote
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				answer <- rec
			}()
			return answer
		}
		const greedy, polite = "192.0.2.1:1000", "192.0.2.2:1000"

		first, second := serve(orders, greedy), serve(products, greedy)
		synctest.Wait() // both in their handlers, holding two turns
		if n := entered.Load(); n != 2 {
			t.Fatalf("%d handlers entered, want 2", n)
		}
		third := <-serve(orders, greedy)
		if third.Code != http.StatusTooManyRequests {
			t.Errorf("the client's third request at once: status %d, want 429", third.Code)
		}
		if got := third.Header().Get("Retry-After"); got != "3" {
			t.Errorf("the client's third request at once: Retry-After %q, want the limits' 3", got)
		}
		other := serve(products, polite)
		synctest.Wait()
		if n := entered.Load(); n != 3 {
			t.Fatalf("%d handlers entered, want 3: another client is served at once", n)
		}

		close(release)
		for i, answer := range []<-chan *httptest.ResponseRecorder{first, second, other} {
			if rec := <-answer; rec.Code != http.StatusOK {
				t.Errorf("held request %d: status %d, want 200", i+1, rec.Code)
			}
		}
		if rec := <-serve(orders, greedy); rec.Code != http.StatusOK {
			t.Errorf("the client's request once its others ended: status %d, want 200 (its second token; the refusal at once took none)", rec.Code)
		}
	})
}

// TestAdmissionKeepsAClientsRatePerHandler: a client that has spent its
// burst on one route is still served on another of the same Admission.
func TestAdmissionKeepsAClientsRatePerHandler(t *testing.T) {
	a, err := overload.NewAdmission(overload.Limits{Concurrency: 2, PerClient: 0.001, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	orders, err := a.Admit(ok)
	if err != nil {
		t.Fatal(err)
	}
	products, err := a.Admit(ok)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		h    http.Handler
		want int
	}{{orders, http.StatusOK}, {orders, http.StatusTooManyRequests}, {products, http.StatusOK}} {
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != c.want {
			t.Errorf("request %d: status %d, want %d", i+1, rec.Code, c.want)
		}
	}
	if _, err := a.Admit(nil); err == nil {
		t.Error("Admit(nil) did not fail")
	}
}

// TestAdmitCountsAnIPv6ClientByItsSlash56: a host given an IPv6 address is
// commonly given a /56 (256 /64s, 2^72 addresses), so an address, or a /64,
// of its own per request gave it a fresh burst each time, and no limit at
// all; and each of them took a place among MaxClients from the clients it
// displaced. Its requests are counted as one client's; IPv4 addresses stay
// one client each.
func TestAdmitCountsAnIPv6ClientByItsSlash56(t *testing.T) {
	h, err := overload.Admit(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		overload.Limits{Concurrency: 2, PerClient: 0.001, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		remote string
		want   int
	}{
		{"[2001:db8:1:200::1]:40000", http.StatusOK},
		{"[2001:db8:1:2ff:ffff:ffff:ffff:fffe]:40001", http.StatusTooManyRequests}, // another /64 of the same /56
		{"[2001:db8:1:300::1]:40000", http.StatusOK},                               // another /56
		{"192.0.2.1:40000", http.StatusOK},
		{"192.0.2.2:40000", http.StatusOK},                       // another IPv4 host
		{"[::ffff:192.0.2.1]:40000", http.StatusTooManyRequests}, // 192.0.2.1, mapped
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = c.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("request %d, from %s: status %d, want %d", i+1, c.remote, rec.Code, c.want)
		}
	}
}

// TestClientName: the port is dropped, so that a proxy that writes it does
// not make each of a client's connections a client of its own; what is not
// an IP address names no client, so that a header's junk is never a key.
func TestClientName(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"203.0.113.5", "203.0.113.5"},
		{"203.0.113.5:4711", "203.0.113.5"},
		{"::ffff:203.0.113.5", "203.0.113.5"},
		{"[::ffff:203.0.113.5]:4711", "203.0.113.5"},
		{"2001:db8:1:201::1", "2001:db8:1:200::/56"},
		{"[2001:db8:1:201::1]:443", "2001:db8:1:200::/56"},
		{"[fe80::1%eth0]:443", "fe80::/56"},
		{"2001:db8:1:2ff:ffff::9", "2001:db8:1:200::/56"}, // another /64 of the same /56
		{"2001:db8:1:300::1", "2001:db8:1:300::/56"},
		{"", ""},
		{"unknown", ""},
		{"203.0.113.5:http", ""},
		{"example.com:443", ""},
		{strings.Repeat("x", 1<<20), ""},
	} {
		if got := overload.ClientName(c.addr); got != c.want {
			t.Errorf("ClientName(%s) = %s, want %q", shop.Quote(c.addr), shop.Quote(got), c.want)
		}
	}
}

// TestAdmitNeverTellsARateLimitedClientToComeBackSooner: a rate per client
// so low that the wait for its next request overflows a time.Duration is
// told the longest wait one holds, not the shortest: the conversion of the
// overflowing float made a negative wait, answered "Retry-After: 1".
func TestAdmitNeverTellsARateLimitedClientToComeBackSooner(t *testing.T) {
	h, err := overload.Admit(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		overload.Limits{Concurrency: 1, PerClient: 1e-12, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	var answers []*httptest.ResponseRecorder
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		answers = append(answers, rec)
	}
	if answers[1].Code != http.StatusTooManyRequests {
		t.Fatalf("the second request: status %d, want 429", answers[1].Code)
	}
	const longest = int64(math.MaxInt64 / int64(time.Second)) // seconds, rounded down
	after, err := strconv.ParseInt(answers[1].Header().Get("Retry-After"), 10, 64)
	if err != nil || after < longest {
		t.Errorf("Retry-After %q, want at least %d seconds (a request a trillion seconds)", answers[1].Header().Get("Retry-After"), longest)
	}
}
