package syncbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"works-vs-scales/internal/syncbuf"
)

func TestBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "writer %d line %d\n", w, i)
				_ = b.String() // a reader while they write
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "\n"); got != 800 {
		t.Errorf("%d lines, want 800", got)
	}
}

func TestBufferMaxKeepsTheLatest(t *testing.T) {
	b := syncbuf.Buffer{Max: 10}
	b.Write([]byte("0123456789a")) // 11 bytes: over Max at the next write
	b.Write([]byte("bc"))
	if got, want := b.String(), "6789abc"; got != want {
		t.Errorf("holds %q, want %q: the last Max/2 bytes, then the write", got, want)
	}
}

func TestTail(t *testing.T) {
	var b syncbuf.Buffer
	b.Write([]byte("one\ntwo\nthree\n"))
	for n, want := range map[int]string{1: "three", 2: "two\nthree", 5: "one\ntwo\nthree", 0: "", -1: ""} {
		if got := b.Tail(n); got != want {
			t.Errorf("Tail(%d) = %q, want %q", n, got, want)
		}
	}
	var empty syncbuf.Buffer
	if got := empty.Tail(3); got != "" {
		t.Errorf("Tail of an empty buffer = %q, want \"\"", got)
	}
}
