// Package rttproxy is a TCP proxy that plays the network between an
// application and its server: it adds a round-trip time to every reply, and
// fails on command as a network does (a hang, a reset, the server down). The
// test harness puts it before PostgreSQL and Redis (WORKSHOP_RTT, and the
// lessons' fault drills), and cmd/shopd -rtt before the shop's database.
package rttproxy

import (
	"container/heap"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy that makes every round trip to a server cost RTT more,
// as a network between an application and its database would, and that
// injects the network's failures on command, each as a client sees the real
// one: [Proxy.Hang] (silence), [Proxy.Reset] (ECONNRESET), [Proxy.Down]
// (ECONNREFUSED).
//
// Each chunk the server sends is held back until RTT after it arrived, so
// requests still pipeline: a proxy of latency, not of bandwidth. Loopback
// answers in about 0.05 ms, a cloud region in 0.5–2 ms; without this, N+1
// queries look cheap on a laptop.
//
// Why not Shopify's toxiproxy, which injects the same faults in process: its
// latency toxic sleeps with Go timers, which on Linux oversleep by about a
// millisecond, as much as the round trips the lessons add, and the lessons'
// numbers rest on that precision (the run header reports the round trip
// really measured). One small proxy serves both the latency and the faults.
type Proxy struct {
	rtt   atomic.Int64 // a time.Duration
	addr  *net.TCPAddr // kept across Down and Up
	dial  func() (net.Conn, error)
	sched *scheduler

	mu       sync.Mutex
	listener net.Listener // nil while down or closed
	conns    map[net.Conn]struct{}
	closed   bool
	flow     chan struct{} // closed while bytes may flow; open while hung
	upErr    error         // why Up could not listen again
	wg       sync.WaitGroup
}

// Start listens on a free loopback port and forwards each connection to
// the target network address ("tcp", "127.0.0.1:5432"; or "unix", a socket path).
func Start(network, target string, rtt time.Duration) (*Proxy, error) {
	return StartOn("127.0.0.1:0", network, target, rtt)
}

// StartOn is Start listening on the TCP address listen ("host:port", port 0
// for a free one) instead: an address of this machine that a container
// reaches, such as its Docker bridge's.
func StartOn(listen, network, target string, rtt time.Duration) (*Proxy, error) {
	listener, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: listen on %s: %w", target, listen, err)
	}
	p := &Proxy{
		addr:     listener.Addr().(*net.TCPAddr),
		dial:     func() (net.Conn, error) { return net.Dial(network, target) },
		sched:    newScheduler(),
		listener: listener,
		conns:    make(map[net.Conn]struct{}),
		flow:     make(chan struct{}),
	}
	close(p.flow)
	p.rtt.Store(int64(rtt))
	p.wg.Go(p.sched.run)
	p.serve(listener)
	return p, nil
}

// Addr is the address clients connect to instead of the target.
func (p *Proxy) Addr() *net.TCPAddr { return p.addr }

// RTT is the round-trip time the proxy adds, as configured.
func (p *Proxy) RTT() time.Duration { return time.Duration(p.rtt.Load()) }

// SetRTT changes the round-trip time the proxy adds, for every connection,
// from the next chunk of a reply on.
func (p *Proxy) SetRTT(rtt time.Duration) { p.rtt.Store(int64(rtt)) }

// Hang stops accepting connections and stops reading and passing bytes in
// both directions, on open connections, until [Proxy.Resume]: connections
// stay open and silent (a new one completes its handshake in the kernel's
// backlog and then hears nothing), as when a router drops packets or the
// server freezes. Only a deadline gets a caller out.
func (p *Proxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flow:
		p.flow = make(chan struct{})
	default: // already hung
	}
}

// Resume lets bytes flow, and connections in, again after [Proxy.Hang].
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flow:
	default:
		close(p.flow)
	}
}

// Reset aborts every open connection with a TCP reset, as a server crash, a
// restart or a load balancer's idle timeout does: clients see ECONNRESET. New
// connections work.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.abortConns()
}

// Down closes the listening port, so that new connections are refused
// (ECONNREFUSED), and aborts every open connection (ECONNRESET), until
// [Proxy.Up]: the server is gone.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener != nil {
		p.listener.Close()
		p.listener = nil
	}
	p.abortConns()
}

// Up listens again, on the same address, after [Proxy.Down]. If the port was
// taken meanwhile, connections stay refused and [Proxy.Close] says why.
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.listener != nil {
		return
	}
	listener, err := net.Listen("tcp", p.addr.String())
	if err != nil {
		p.upErr = fmt.Errorf("proxy up again on %s: %w", p.addr, err)
		return
	}
	p.listener = listener
	p.serve(listener)
}

// Close stops accepting, closes every open connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	listener := p.listener
	p.listener = nil
	for c := range p.conns {
		c.Close()
	}
	err := p.upErr
	p.mu.Unlock()
	p.Resume() // releases goroutines waiting in a hang
	if listener != nil {
		err = listener.Close()
	}
	p.sched.stop()
	p.wg.Wait()
	return err
}

// abortConns closes every open connection with a reset. p.mu is held.
func (p *Proxy) abortConns() {
	for c := range p.conns {
		if tcp, ok := c.(*net.TCPConn); ok {
			tcp.SetLinger(0) // close sends RST, not FIN
		}
		c.Close()
	}
}

// flowing returns a channel that is closed while bytes may flow.
func (p *Proxy) flowing() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flow
}

// serve accepts connections on listener until it closes. p.mu is held, or p
// is not yet shared.
func (p *Proxy) serve(listener net.Listener) {
	p.wg.Go(func() {
		for {
			<-p.flowing() // a hung proxy leaves connections in the backlog
			client, err := listener.Accept()
			if err != nil {
				return // closed: down or closing
			}
			<-p.flowing() // hung while Accept waited: the client hears nothing
			server, err := p.dial()
			if err != nil {
				if tcp, ok := client.(*net.TCPConn); ok {
					tcp.SetLinger(0)
				}
				client.Close()
				continue
			}
			if !p.track(client, server) {
				return
			}
			p.wg.Go(func() {
				defer p.untrack(client, server)
				p.forward(server, client) // requests go straight through
			})
			p.wg.Go(func() {
				defer p.untrack(client, server)
				p.delay(client, server) // replies wait out the round trip
			})
		}
	})
}

// track records both ends of a connection, or closes them when the proxy is closing.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		if p.closed {
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
	}
	return !p.closed
}

// untrack closes both ends: when one direction ends, the connection is over.
func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

// forward copies from src to dst as bytes arrive; while hung it neither reads
// nor writes.
func (p *Proxy) forward(dst, src net.Conn) {
	buf := make([]byte, 64*1024)
	for {
		<-p.flowing()
		n, err := src.Read(buf)
		if n > 0 {
			<-p.flowing()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// chunk is a piece of a reply and when it may be passed on.
type chunk struct {
	data []byte
	due  time.Time
}

// delay copies from server to client, each chunk RTT after it arrived.
func (p *Proxy) delay(client, server net.Conn) {
	pending := make(chan chunk, 256)
	p.wg.Go(func() {
		defer close(pending)
		buf := make([]byte, 64*1024)
		for {
			<-p.flowing()
			n, err := server.Read(buf)
			if n > 0 {
				pending <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.RTT())}
			}
			if err != nil {
				return
			}
		}
	})
	for c := range pending {
		p.sched.wait(c.due)
		<-p.flowing()
		if _, err := client.Write(c.data); err != nil {
			server.Close() // unblocks the reader, which closes pending
			for range pending {
			}
			return
		}
	}
}

// timerSlack is how close a Go timer gets to its time: on Linux they
// oversleep by about a millisecond, as much as the delays the proxy adds.
const timerSlack = 2 * time.Millisecond

// scheduler wakes the proxy's connections when their chunks are due, from one
// goroutine: it sleeps with a Go timer while the earliest chunk is far, with
// [sleepThread] (which blocks one thread, not a CPU) while it is near, and
// spins only the last [spinWindow]. One goroutine spins at a time, however
// many connections wait, instead of one per connection.
type scheduler struct {
	mu      sync.Mutex
	waiters waiterHeap
	stopped bool
	wake    chan struct{} // a new earliest waiter, or stop
}

type waiter struct {
	due  time.Time
	done chan struct{}
}

type waiterHeap []waiter

func (h waiterHeap) Len() int           { return len(h) }
func (h waiterHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h waiterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waiterHeap) Push(x any)        { *h = append(*h, x.(waiter)) }
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

func newScheduler() *scheduler { return &scheduler{wake: make(chan struct{}, 1)} }

// wait returns at due, or at once if due has passed or the scheduler stopped.
func (s *scheduler) wait(due time.Time) {
	if !time.Now().Before(due) {
		return
	}
	w := waiter{due: due, done: make(chan struct{})}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	heap.Push(&s.waiters, w)
	earliest := s.waiters[0].done == w.done
	s.mu.Unlock()
	if earliest {
		s.poke()
	}
	<-w.done
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop releases every waiter and ends run.
func (s *scheduler) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.poke()
}

// run releases waiters as they fall due, until stop.
func (s *scheduler) run() {
	for {
		s.mu.Lock()
		if s.stopped {
			for _, w := range s.waiters {
				close(w.done)
			}
			s.waiters = nil
			s.mu.Unlock()
			return
		}
		if len(s.waiters) == 0 {
			s.mu.Unlock()
			<-s.wake
			continue
		}
		due := s.waiters[0].due
		s.mu.Unlock()

		switch d := time.Until(due); {
		case d > timerSlack:
			timer := time.NewTimer(d - timerSlack)
			select {
			case <-timer.C:
			case <-s.wake: // an earlier waiter, or stop
				timer.Stop()
			}
			continue
		case d > spinWindow:
			sleepThread(d - spinWindow) // may wake early: the loop sleeps again
			continue
		}
		for time.Now().Before(due) {
			runtime.Gosched()
		}
		now := time.Now()
		s.mu.Lock()
		for len(s.waiters) > 0 && !s.waiters[0].due.After(now) {
			close(heap.Pop(&s.waiters).(waiter).done)
		}
		s.mu.Unlock()
	}
}
