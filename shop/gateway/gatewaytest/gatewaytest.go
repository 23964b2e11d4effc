// Package gatewaytest runs a payment gateway in the test process: a real HTTP
// server speaking the API of package gateway, which fails on command.
//
// Charges fail as FailNext and Faults.FailureRate say; a lookup of a key
// ([gateway.Client.ChargeByKey]) fails only as FailNextLookups says. Hang and
// Latency apply to both. A charge it cannot make (no user, an amount of 0 or
// less, a currency not of three bytes) is refused with 400, and one of an
// amount Decline names is declined with 402, as a card is: neither charges. Hold keeps charges
// waiting, unmade, until Release, so that a test knows every caller arrived
// before any was charged.
//
// It keeps every charge it makes, so a test can count what a user paid:
// duplicates are charges with the same reference.
package gatewaytest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"works-vs-scales/shop/gateway"
)

// Failure is how one request fails.
type Failure struct {
	Status      int           // the reply's status, e.g. 500, 503, 400; ignored with Reset
	RetryAfter  time.Duration // sent as Retry-After, in whole seconds, when positive
	Reset       bool          // close the connection instead of replying
	AfterCharge bool          // charge first, then fail: the money is taken, the reply is lost
}

// Faults is how the gateway misbehaves until told otherwise.
type Faults struct {
	FailureRate float64       // the fraction of requests that fail, as Failure says
	Failure     Failure       // a 500 if zero
	Latency     time.Duration // added before every reply
	Hang        bool          // every request waits, unanswered, until its client gives up
}

// Server is a payment gateway in the test process.
type Server struct {
	http     *httptest.Server
	requests atomic.Int64
	lookups  atomic.Int64
	closing  chan struct{}

	mu             sync.Mutex
	faults         Faults
	next           []Failure // failures of the next charges, before FailureRate applies
	lookupFailures []Failure // failures of the next lookups
	random         *rand.Rand
	charges        []gateway.Charge
	byKey          map[string]gateway.Charge
	keys           map[string]string // charge id → the idempotency key it was made under
	declined       map[int64]bool    // amounts declined, as a card is
	changed        chan struct{}     // closed and replaced when faults change, to release hung requests
	hold           chan struct{}     // while not nil, charges wait for it to close
	held           int               // charges waiting on hold
}

// Start starts a healthy gateway on a loopback port. Its random failures
// follow a fixed seed. Stop it with Close.
func Start() *Server {
	s := &Server{
		closing: make(chan struct{}),
		random:  rand.New(rand.NewPCG(1, 2)),
		byKey:   make(map[string]gateway.Charge),
		keys:    make(map[string]string),
		changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /charges", s.serveCharge)
	mux.HandleFunc("GET /charges", s.serveLookup)
	s.http = httptest.NewServer(mux)
	return s
}

// URL is the gateway's base URL.
func (s *Server) URL() string { return s.http.URL }

// Client returns a client of this gateway, with no timeout but its caller's.
func (s *Server) Client() *gateway.Client {
	return &gateway.Client{URL: s.http.URL, HTTP: s.http.Client()}
}

// Close releases hung requests and stops the server.
func (s *Server) Close() {
	close(s.closing)
	s.http.CloseClientConnections()
	s.http.Close()
}

// SetFaults changes how the gateway misbehaves from the next request on, and
// releases requests hung by an earlier Hang.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	close(s.changed)
	s.changed = make(chan struct{})
}

// Hold makes every charge from now on wait, before anything is decided or
// charged, until [Server.Release]; [Server.Held] counts those waiting. A
// client that gives up meanwhile gets no reply.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release lets the charges waiting on [Server.Hold] go on, and charges from
// now on no longer wait.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Held returns how many charges wait on [Server.Hold].
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// FailNext makes the next len(failures) charges fail, in order.
func (s *Server) FailNext(failures ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = append(s.next, failures...)
}

// FailNextLookups makes the next len(failures) lookups of a key fail, in
// order; AfterCharge means nothing to a lookup, which never charges.
func (s *Server) FailNextLookups(failures ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookupFailures = append(s.lookupFailures, failures...)
}

// Decline makes the gateway decline every charge of these amounts (in
// cents) from now on, with 402 Payment Required, charging nothing: a test's
// way to a declined card.
func (s *Server) Decline(amountCents ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.declined == nil {
		s.declined = make(map[int64]bool)
	}
	for _, a := range amountCents {
		s.declined[a] = true
	}
}

// Keys returns the idempotency key each charge was made under, by the
// charge's id ("" for a charge asked without one): the key the gateway was
// sent, gateway.ScopedKey's user and key.
func (s *Server) Keys() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make(map[string]string, len(s.charges))
	for _, c := range s.charges {
		keys[c.ID] = s.keys[c.ID]
	}
	return keys
}

// Requests returns how many charge requests reached the gateway.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Lookups returns how many lookups of a key reached the gateway.
func (s *Server) Lookups() int64 { return s.lookups.Load() }

// Charges returns every charge made, in order.
func (s *Server) Charges() []gateway.Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gateway.Charge(nil), s.charges...)
}

// Duplicates returns how many charges repeat an earlier charge's reference:
// money taken twice for one thing.
func (s *Server) Duplicates() int {
	seen := make(map[string]bool)
	duplicates := 0
	for _, c := range s.Charges() {
		if seen[c.Reference] {
			duplicates++
		}
		seen[c.Reference] = true
	}
	return duplicates
}

// serveCharge answers POST /charges.
func (s *Server) serveCharge(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if !s.waitForRelease(r) {
		return
	}
	faults, failure, changed := s.decide()
	if !s.wait(r, faults, changed) {
		return
	}
	if failure != nil && !failure.AfterCharge {
		s.fail(w, *failure)
		return
	}
	var req gateway.ChargeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, fmt.Sprintf("decode the charge: %v", err), http.StatusBadRequest)
		return
	}
	if req.UserID <= 0 || req.AmountCents <= 0 || len(req.Currency) != 3 {
		http.Error(w, fmt.Sprintf("invalid charge %+v", req), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	declined := s.declined[req.AmountCents]
	s.mu.Unlock()
	if declined {
		http.Error(w, "card declined", http.StatusPaymentRequired)
		return
	}
	charge, created := s.charge(req, r.Header.Get(gateway.IdempotencyKeyHeader))
	if failure != nil {
		s.fail(w, *failure)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if created {
		w.WriteHeader(http.StatusCreated)
	}
	json.NewEncoder(w).Encode(charge)
}

// serveLookup answers GET /charges?idempotency_key=K: the charge made under
// K, or 404.
func (s *Server) serveLookup(w http.ResponseWriter, r *http.Request) {
	s.lookups.Add(1)
	s.mu.Lock()
	faults, changed := s.faults, s.changed
	var failure *Failure
	if len(s.lookupFailures) > 0 {
		failure = &s.lookupFailures[0]
		s.lookupFailures = s.lookupFailures[1:]
	}
	s.mu.Unlock()
	if !s.wait(r, faults, changed) {
		return
	}
	if failure != nil {
		s.fail(w, *failure)
		return
	}
	key := r.URL.Query().Get("idempotency_key")
	s.mu.Lock()
	charge, ok := s.byKey[key]
	s.mu.Unlock()
	if !ok || key == "" {
		http.Error(w, "no charge under this key", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(charge)
}

// wait holds a request as faults say: until it is released, with Hang, or
// for Latency. It reports whether to reply at all.
func (s *Server) wait(r *http.Request, faults Faults, changed <-chan struct{}) bool {
	if faults.Hang {
		select {
		case <-r.Context().Done():
		case <-changed:
		case <-s.closing:
		}
		return false // no reply: the client has gone, or the test moved on
	}
	if faults.Latency > 0 {
		select {
		case <-time.After(faults.Latency):
		case <-r.Context().Done():
			return false
		}
	}
	return true
}

// waitForRelease holds a charge while the server holds charges, and reports
// whether to go on: false if its client gave up or the server is closing.
func (s *Server) waitForRelease(r *http.Request) bool {
	s.mu.Lock()
	hold := s.hold
	if hold != nil {
		s.held++
	}
	s.mu.Unlock()
	if hold == nil {
		return true
	}
	defer func() {
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}()
	select {
	case <-hold:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

// decide returns the faults in force, how this request fails (nil if it
// does not), and a channel closed when the faults change.
func (s *Server) decide() (Faults, *Failure, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.next) > 0 {
		failure := s.next[0]
		s.next = s.next[1:]
		return s.faults, &failure, s.changed
	}
	if s.faults.FailureRate > 0 && s.random.Float64() < s.faults.FailureRate {
		failure := s.faults.Failure
		return s.faults, &failure, s.changed
	}
	return s.faults, nil, s.changed
}

// charge takes the money once per idempotency key: a repeated key returns
// the first charge, and created is false.
func (s *Server) charge(req gateway.ChargeRequest, key string) (charge gateway.Charge, created bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if first, ok := s.byKey[key]; ok && key != "" {
		return first, false
	}
	charge = gateway.Charge{ID: "ch_" + strconv.Itoa(len(s.charges)+1), ChargeRequest: req}
	s.charges = append(s.charges, charge)
	s.keys[charge.ID] = key
	if key != "" {
		s.byKey[key] = charge
	}
	return charge, true
}

func (s *Server) fail(w http.ResponseWriter, failure Failure) {
	if failure.Reset {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if failure.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(failure.RetryAfter.Round(time.Second)/time.Second)))
	}
	status := failure.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	http.Error(w, "injected failure", status)
}
