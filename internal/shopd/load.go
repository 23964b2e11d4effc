package shopd

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"

	"works-vs-scales/internal/load"
	"works-vs-scales/shop"
)

// OrdersTargets returns the requests of a load on GET /users/{id}/orders of
// the service at baseURL (e.g. "http://127.0.0.1:8080"), for internal/load:
// the user of each request is drawn uniformly from the shop's users by its
// sequence number and seed, so that two runs send the same requests. The
// power law of orders per user (see shop.Scale) makes most requests small and
// a few huge, as a real shop's traffic is.
func OrdersTargets(baseURL string, s shop.Scale, seed uint64) load.Targets {
	base := strings.TrimSuffix(baseURL, "/")
	users := s.Users()
	return func(seq uint64) load.Target {
		id := rand.New(rand.NewPCG(seed, seq)).IntN(users) + 1
		return load.Target{Method: http.MethodGet, URL: fmt.Sprintf("%s/users/%d/orders", base, id)}
	}
}
