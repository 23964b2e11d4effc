// Package syncbuf holds what a child process or a logger writes, for another
// goroutine to read while it still writes: the output a test or a tool shows
// when a child fails.
//
// It imports nothing of the harness, so that cmd/load can use it as the tests
// do.
package syncbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer safe to write from one goroutine (a child's stdout
// and stderr, a logger) and read from another. Its zero value is an empty
// buffer ready to use.
type Buffer struct {
	// Max, if positive, bounds what the buffer holds: once it holds more
	// than Max bytes, a Write first drops all but the last Max/2, so that a
	// chatty child's latest words are kept. Zero keeps everything.
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Max > 0 && b.buf.Len() > b.Max {
		rest := bytes.Clone(b.buf.Bytes()[b.buf.Len()-b.Max/2:])
		b.buf.Reset()
		b.buf.Write(rest)
	}
	return b.buf.Write(p)
}

// String returns what the buffer holds.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail returns the last n lines the buffer holds, without the final newline;
// "" if n <= 0.
func (b *Buffer) Tail(n int) string {
	if n <= 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
