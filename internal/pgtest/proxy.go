package pgtest

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// Proxy is a TCP proxy that makes every round trip to a server cost RTT more,
// as a network between an application and its database would.
//
// Each chunk the server sends is held back until RTT after it arrived, so
// requests still pipeline: a proxy of latency, not of bandwidth. Loopback
// answers in about 0.05 ms, a cloud region in 0.5–2 ms; without this, N+1
// queries look cheap on a laptop.
type Proxy struct {
	rtt      time.Duration
	listener net.Listener
	dial     func() (net.Conn, error)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards each connection to
// the target network address ("tcp", "127.0.0.1:5432"; or "unix", a socket path).
func StartProxy(network, target string, rtt time.Duration) (*Proxy, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: listen: %w", target, err)
	}
	p := &Proxy{
		rtt:      rtt,
		listener: listener,
		dial:     func() (net.Conn, error) { return net.Dial(network, target) },
		conns:    make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to instead of the target.
func (p *Proxy) Addr() *net.TCPAddr { return p.listener.Addr().(*net.TCPAddr) }

// RTT is the round-trip time the proxy adds, as configured.
func (p *Proxy) RTT() time.Duration { return p.rtt }

// Close stops accepting, closes every open connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.listener.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return // closed
		}
		server, err := p.dial()
		if err != nil {
			client.Close()
			continue
		}
		if !p.track(client, server) {
			return
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer p.untrack(client, server)
			io.Copy(server, client) // requests go straight through
		}()
		go func() {
			defer p.wg.Done()
			defer p.untrack(client, server)
			p.delay(client, server) // replies wait out the round trip
		}()
	}
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

// chunk is a piece of a reply and when it may be passed on.
type chunk struct {
	data []byte
	due  time.Time
}

// delay copies from server to client, each chunk RTT after it arrived.
func (p *Proxy) delay(client, server net.Conn) {
	pending := make(chan chunk, 256)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(pending)
		buf := make([]byte, 64*1024)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				pending <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.rtt)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range pending {
		sleepUntil(c.due)
		if _, err := client.Write(c.data); err != nil {
			server.Close() // unblocks the reader, which closes pending
			for range pending {
			}
			return
		}
	}
}

// sleepUntil waits until t. time.Sleep on Linux can oversleep by about a
// millisecond, more than the delays this proxy adds, so the last stretch is
// spent yielding in a loop instead.
func sleepUntil(t time.Time) {
	const sleepSlack = 1500 * time.Microsecond
	if d := time.Until(t); d > sleepSlack {
		time.Sleep(d - sleepSlack)
	}
	for time.Now().Before(t) {
		runtime.Gosched()
	}
}
