package pgtest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReplicaSlotNamesParseBackUnderTheirPrefixOnly(t *testing.T) {
	const prefix = "wvs_"
	run := func(slot string) string {
		m := replicaSlotPattern.FindStringSubmatch(strings.TrimPrefix(slot, prefix))
		if m == nil || !strings.HasPrefix(slot, prefix) {
			return ""
		}
		return m[1]
	}
	assert.Equal(t, "0a1b2c3d", run(prefix+"run_0a1b2c3d_replica"))
	for _, other := range []string{"wvs_run_0A1B2C3D_replica", "wvs_run_0a1b2c3d_replica_x", "wvs_alice_run_0a1b2c3d_replica", "xvs_run_0a1b2c3d_replica", "pgbackrest"} {
		assert.Empty(t, run(other), other)
	}
	assert.LessOrEqual(t, len("wvs_"+strings.Repeat("a", 18)+"_run_0a1b2c3d_replica"), 63, "slot names fit PostgreSQL's limit")
}

func TestServerBinarySaysWhereItLooked(t *testing.T) {
	_, err := serverBinary("no-such-postgres-program", "15")
	assert.ErrorContains(t, err, "/usr/lib/postgresql/15/bin/no-such-postgres-program")
}
