package overload_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"works-vs-scales/scalable/overload"
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
