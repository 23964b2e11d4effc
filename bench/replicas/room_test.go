package replicas_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/bench/benchkit"
	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// TestTheRoomsReplicaIsNoTraineesToChange: two trainees (child processes,
// each with a prefix of its own) use one replica as the room's
// (WORKSHOP_REPLICA_URL, here the one this test's harness started) at once.
// The room's replica applies commits roomDelay late (this test sets that on
// its own replica first). Each trainee reads its own copy of the shop from it
// and asks for the delay it has, which goes on; each then asks for a minute's
// delay, which is skipped, saying why. Afterwards the replica's delay is still
// roomDelay: no trainee set it, and no cleanup put 0 back.
func TestTheRoomsReplicaIsNoTraineesToChange(t *testing.T) {
	if benchkit.InChild(t) {
		traineeOnTheRoomsReplica(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a replica of the whole server; skipped with -short")
	}
	url := pgtest.ReplicaURL(t)
	pgtest.SetReplicaDelay(t, roomDelay) // the trainer's setting, on a replica this run started
	var children []*benchkit.Child
	for _, trainee := range []string{"ra_", "rb_"} {
		benchkit.DropUnderPrefix(t, pgtest.Prefix()+trainee)
		// The server of this run, whatever found it (a URL, or the container
		// path's own): a child left to find its own would start another.
		c, err := benchkit.StartChild(t, workshopenv.ReplicaURL+"="+url, workshopenv.ReplicaOwn+"=",
			workshopenv.DBPrefix+"="+pgtest.Prefix()+trainee, workshopenv.DatabaseURL+"="+pgtest.ServerURL(t))
		require.NoError(t, err)
		children = append(children, c)
	}
	for i, c := range children {
		out, err := c.Wait()
		require.NoError(t, err, "trainee %d:\n%s", i, out)
		assert.Contains(t, out, "the room's replica", "trainee %d: the minute's delay is skipped, saying why:\n%s", i, out)
		assert.Contains(t, out, "--- SKIP: TestTheRoomsReplicaIsNoTraineesToChange/a_minute_late", "trainee %d", i)
		assert.Contains(t, out, "--- PASS: TestTheRoomsReplicaIsNoTraineesToChange/the_delay_it_has", "trainee %d", i)
	}
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var setting string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'").Scan(&setting))
	assert.Equal(t, strconv.FormatInt(roomDelay.Milliseconds(), 10), setting, "no trainee set the room's replica's delay, nor put another back")
}

// roomDelay is the apply delay of the room's replica in
// TestTheRoomsReplicaIsNoTraineesToChange: one no test of the package sets.
const roomDelay = 7 * time.Millisecond

// traineeOnTheRoomsReplica is a trainee's part of
// TestTheRoomsReplicaIsNoTraineesToChange, in a child.
func traineeOnTheRoomsReplica(t *testing.T) {
	primary, standby := pgtest.ShopCloneWithReplica(t, shop.Small)
	t.Run("the delay it has", func(t *testing.T) {
		pgtest.SetReplicaDelay(t, roomDelay)
		var onPrimary, onStandby int64
		require.NoError(t, primary.QueryRow(t.Context(), "SELECT count(*) FROM orders").Scan(&onPrimary))
		require.NoError(t, standby.QueryRow(t.Context(), "SELECT count(*) FROM orders").Scan(&onStandby))
		require.Equal(t, onPrimary, onStandby, "the trainee's copy, read from the room's replica")
	})
	t.Run("a minute late", func(t *testing.T) {
		pgtest.SetReplicaDelay(t, time.Minute)
		t.Error("the room's replica took a delay from a trainee")
	})
}
