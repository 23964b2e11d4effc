package pgtest

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy that makes every round trip to a server cost RTT more,
// as a network between an application and its database would, and that
// injects the network's failures on command: [Proxy.Hang], [Proxy.Reset],
// [Proxy.Down].
//
// Each chunk the server sends is held back until RTT after it arrived, so
// requests still pipeline: a proxy of latency, not of bandwidth. Loopback
// answers in about 0.05 ms, a cloud region in 0.5–2 ms; without this, N+1
// queries look cheap on a laptop.
type Proxy struct {
	rtt      atomic.Int64 // a time.Duration
	listener net.Listener
	dial     func() (net.Conn, error)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	down   bool
	flow   chan struct{} // closed while bytes may flow; open while hung
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
		listener: listener,
		dial:     func() (net.Conn, error) { return net.Dial(network, target) },
		conns:    make(map[net.Conn]struct{}),
		flow:     make(chan struct{}),
	}
	close(p.flow)
	p.rtt.Store(int64(rtt))
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to instead of the target.
func (p *Proxy) Addr() *net.TCPAddr { return p.listener.Addr().(*net.TCPAddr) }

// RTT is the round-trip time the proxy adds, as configured.
func (p *Proxy) RTT() time.Duration { return time.Duration(p.rtt.Load()) }

// SetRTT changes the round-trip time the proxy adds, for every connection,
// from the next chunk of a reply on.
func (p *Proxy) SetRTT(rtt time.Duration) { p.rtt.Store(int64(rtt)) }

// Hang stops every byte in both directions, on open and new connections,
// until [Proxy.Resume]: connections stay open and silent, as when a router
// drops packets or the server freezes. Only a deadline gets a caller out.
func (p *Proxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flow:
		p.flow = make(chan struct{})
	default: // already hung
	}
}

// Resume lets bytes flow again after [Proxy.Hang].
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flow:
	default:
		close(p.flow)
	}
}

// Reset closes every open connection, as a server restart or a load
// balancer's idle timeout does; new connections work.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Down closes every open connection and refuses new ones until [Proxy.Up]:
// the server is gone.
func (p *Proxy) Down() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.Reset()
}

// Up accepts connections again after [Proxy.Down].
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Close stops accepting, closes every open connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.Resume() // releases writers waiting in a hang
	err := p.listener.Close()
	p.wg.Wait()
	return err
}

// flowing returns a channel that is closed while bytes may flow.
func (p *Proxy) flowing() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flow
}

// isDown reports whether the proxy refuses connections.
func (p *Proxy) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return // closed
		}
		if p.isDown() {
			client.Close()
			continue
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
			p.forward(server, client) // requests go straight through
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

// forward copies from src to dst as bytes arrive, holding them while hung.
func (p *Proxy) forward(dst, src net.Conn) {
	buf := make([]byte, 64*1024)
	for {
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
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(pending)
		buf := make([]byte, 64*1024)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				pending <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(p.RTT())}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range pending {
		sleepUntil(c.due)
		<-p.flowing()
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
