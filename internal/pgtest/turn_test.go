package pgtest

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/syncbuf"
)

// TestTheServerFreesTheTurnOfASessionThatEnds: a run that dies while it
// holds the room's turn for a large check (a SIGKILL, a -timeout panic)
// never releases it itself; its session ends with it, and the server drops
// the session's advisory lock, so that the check that waits gets the turn.
// The session ends here as a killed process's does: its connection closes
// without a word of unlocking.
func TestTheServerFreesTheTurnOfASessionThatEnds(t *testing.T) {
	ctx := context.Background()
	h, err := start(ctx, os.Getenv, startContainer)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, h.close(context.Background())) })
	key := rand.Int32N(1<<30) + 2 // a turn of this test's own, not the room's
	connect := func(name string) *pgx.Conn {
		cfg := h.admin.Config().ConnConfig.Copy()
		cfg.RuntimeParams["application_name"] = name
		conn, err := pgx.ConnectConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	dying, waiting, watching := connect(h.prefix+"turn_dying"), connect(h.prefix+"turn_waiting"), connect(h.prefix+"turn_watching")

	require.NoError(t, takeTurn(ctx, dying, key, "the first check", &syncbuf.Buffer{}))
	var said syncbuf.Buffer
	took := make(chan error, 1)
	go func() { took <- takeTurn(ctx, waiting, key, "the second check", &said) }()
	waitFor(t, "the second check to wait for the turn", func() bool {
		n, _, err := TurnQueue(ctx, watching, key)
		require.NoError(t, err)
		return n == 1
	})
	select {
	case err := <-took:
		t.Fatalf("the second check took the turn while the first held it (%v)", err)
	default:
	}
	require.Contains(t, said.String(), "the second check: waiting for another trainee's large check to end")
	require.Contains(t, said.String(), h.prefix+"turn_dying holds the turn, 0 waiting before this one", "it names who holds the turn")
	require.Equal(t, 1, strings.Count(said.String(), "\n"), "it says so once")

	require.NoError(t, dying.Close(ctx)) // no unlock: the session ends
	select {
	case err := <-took:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the turn of a session that ended was not handed on within 30s")
	}
	_, holder, err := TurnQueue(ctx, watching, key)
	require.NoError(t, err)
	require.Equal(t, h.prefix+"turn_waiting", holder)
}
