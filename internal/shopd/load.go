package shopd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"works-vs-scales/shop"
)

// Load is one step of an open-loop load on GET /users/{id}/orders: Rate
// requests a second, sent on schedule whether or not the earlier ones were
// answered, for Duration. Users are drawn uniformly from the shop's: the
// power law of orders per user (see shop.Scale) makes most requests small
// and a few huge, as a real shop's traffic is.
type Load struct {
	Rate     int           // requests a second, at least 1
	Duration time.Duration // how long the rate is held
	Timeout  time.Duration // how long a client waits for an answer
	Scale    shop.Scale    // the shop the service serves
	Seed     uint64        // the users drawn; the same seed, the same users
}

// LoadResult is what a Load measured.
type LoadResult struct {
	Sent      int             // requests sent
	OK        int             // answered 200
	Refused   int             // answered 4xx or 5xx
	TimedOut  int             // not answered within Load.Timeout, or the connection failed
	Latencies []time.Duration // of every request sent, ascending; a timed-out one counts as Timeout
	Elapsed   time.Duration   // from the first request sent to the last answer
	Statuses  map[int]int     // answers by status code
}

// Quantile returns the q-quantile (0 to 1) of the latencies: exact, from all
// of them, nearest rank.
func (r LoadResult) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.5) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// ErrInvalidLoad is returned by RunLoad for a Load that cannot run.
var ErrInvalidLoad = fmt.Errorf("load: %w", shop.ErrInvalidConfig)

// RunLoad sends l to the service at baseURL (e.g. "http://127.0.0.1:8080")
// with vegeta's attacker, and waits for every answer. It stops early, with
// what it measured so far, when ctx ends.
func RunLoad(ctx context.Context, baseURL string, l Load) (LoadResult, error) {
	if l.Rate < 1 || l.Duration <= 0 || l.Timeout <= 0 || l.Scale.Users() < 1 {
		return LoadResult{}, fmt.Errorf("%w: rate %d, duration %v, timeout %v, %d users", ErrInvalidLoad, l.Rate, l.Duration, l.Timeout, l.Scale.Users())
	}
	base := strings.TrimSuffix(baseURL, "/")
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(l.Seed, 17))
	users := l.Scale.Users()
	targeter := func(t *vegeta.Target) error {
		mu.Lock()
		id := rng.IntN(users) + 1
		mu.Unlock()
		t.Method, t.URL = http.MethodGet, fmt.Sprintf("%s/users/%d/orders", base, id)
		return nil
	}
	// No bound on workers: an open loop sends on schedule whatever the
	// answers; a closed one would wait for them and hide the queue.
	attacker := vegeta.NewAttacker(vegeta.Timeout(l.Timeout), vegeta.KeepAlive(true), vegeta.MaxBody(0))
	stop := context.AfterFunc(ctx, func() { attacker.Stop() })
	defer stop()
	res := LoadResult{Statuses: make(map[int]int)}
	var first, last time.Time
	for r := range attacker.Attack(targeter, vegeta.Rate{Freq: l.Rate, Per: time.Second}, l.Duration, "shopd") {
		res.Sent++
		if first.IsZero() || r.Timestamp.Before(first) {
			first = r.Timestamp
		}
		if end := r.End(); end.After(last) {
			last = end
		}
		latency := r.Latency
		switch {
		case r.Code == 0: // no answer: the client's timeout, or the connection failed
			res.TimedOut++
			latency = max(latency, l.Timeout)
		case r.Code == http.StatusOK:
			res.OK++
		default:
			res.Refused++
		}
		res.Statuses[int(r.Code)]++
		res.Latencies = append(res.Latencies, latency)
	}
	slices.Sort(res.Latencies)
	res.Elapsed = last.Sub(first)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("load at %d/s: %w", l.Rate, err)
	}
	return res, nil
}
