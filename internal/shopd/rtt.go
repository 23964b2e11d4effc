package shopd

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"works-vs-scales/internal/rttproxy"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// ThroughRTTProxy returns dbURL rewritten to reach its server through a
// proxy that adds rtt to every round trip (rttproxy.Proxy, as the lessons'
// WORKSHOP_RTT), and the proxy, to close after the pools that use it.
func ThroughRTTProxy(dbURL string, rtt time.Duration) (string, *rttproxy.Proxy, error) {
	u, err := url.Parse(dbURL)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("shopd: database URL %s has no host to proxy: %w", shop.Quote(workshopenv.Redacted(dbURL)), shop.ErrInvalidConfig)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	p, err := rttproxy.Start("tcp", target, rtt)
	if err != nil {
		return "", nil, fmt.Errorf("shopd: proxy to %s: %w", target, err)
	}
	u.Host = p.Addr().String()
	return u.String(), p, nil
}
