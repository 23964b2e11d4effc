package pgtest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

func TestParsePrefix(t *testing.T) {
	for setting, want := range map[string]string{"": workshopenv.DefaultPrefix, "wvs_": "wvs_", "wvs_alice_": "wvs_alice_", "ci_0a1b2c3d_": "ci_0a1b2c3d_"} {
		prefix, err := parsePrefix(setting)
		require.NoError(t, err, setting)
		assert.Equal(t, want, prefix)
	}
	for _, bad := range []string{"wvs", "WVS_", "1wvs_", "wvs-a_", `wvs";drop_`, "_", strings.Repeat("a", 22) + "_", "wvs_%_"} {
		_, err := parsePrefix(bad)
		assert.ErrorContains(t, err, workshopenv.DBPrefix, "%q", bad)
	}
}

func TestNamesParseBackUnderTheirPrefixOnly(t *testing.T) {
	const prefix = "wvs_"
	small := shop.Scale{TopOrders: 10_000}
	tpl := templateName(prefix, small)
	cases := []struct {
		name string
		want parsed
	}{
		{runName(prefix, "0a1b2c3d", "read_"+small.String()), parsed{kind: runCopy, run: "0a1b2c3d"}},
		{runName(prefix, "0a1b2c3d", "clone_12"), parsed{kind: runCopy, run: "0a1b2c3d"}},
		{tpl, parsed{kind: template, hash: contentHash(), base: tpl}},
		{tpl + "_building", parsed{kind: building, hash: contentHash(), base: tpl}},
		{"wvs_tpl_00000000_top100_seed1", parsed{kind: template, hash: "00000000", base: "wvs_tpl_00000000_top100_seed1"}},
		{derivedName(prefix, "l19v1naive10m"), parsed{kind: template, hash: contentHash(), base: derivedName(prefix, "l19v1naive10m")}},
		{derivedName(prefix, "l19v1naive10m") + "_building", parsed{kind: building, hash: contentHash(), base: derivedName(prefix, "l19v1naive10m")}},
		{"wvs_read_4242_top10000", parsed{kind: legacy}},
		{"wvs_clone_4242_7", parsed{kind: legacy}},
		// Never the harness's, however close:
		{"wvs_run_0A1B2C3D_clone_1", parsed{}},
		{"wvs_run_0a1b2c3_clone_1", parsed{}},
		{"wvs_run_0a1b2c3d_clone_1; DROP", parsed{}},
		{"wvs_run_0a1b2c3d_clone_", parsed{}},
		{"wvs_tpl_0a1b2c3d_top100_seed1_building_x", parsed{}},
		{"wvs_tpl_0a1b2c3d_L19", parsed{}},
		{"wvs_tpl_0a1b2c3d_a2345678901234567890", parsed{}},
		{"wvs_tpl_0a1b2c3d_top100_seed1_l19", parsed{}},
		{"shop", parsed{}},
		{"wvs_", parsed{}},
		// Another prefix's databases are nothing to this one, even a longer
		// prefix that starts with it.
		{"wvs_alice_run_0a1b2c3d_clone_1", parsed{}},
		{"wvs_alice_tpl_0a1b2c3d_top100_seed1", parsed{}},
		{"xvs_run_0a1b2c3d_clone_1", parsed{}},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, parseName(prefix, c.name), c.name)
	}
	assert.Equal(t, parsed{kind: runCopy, run: "0a1b2c3d"}, parseName("wvs_alice_", "wvs_alice_run_0a1b2c3d_clone_1"))
}

func TestDerivedNamesAreShortLowerCaseWords(t *testing.T) {
	for _, name := range []string{"l19v1scalable30m", "harnessv1", "a", "a234567890123456789"} {
		assert.Regexp(t, derivedNamePattern, name)
	}
	for _, name := range []string{"", "L19", "1abc", "a_b", "a b", "a234567890123456789x", "top100_seed1"} {
		assert.NotRegexp(t, derivedNamePattern, name)
	}
}

func TestNamesFitPostgreSQLsLimit(t *testing.T) {
	prefix := strings.Repeat("a", 21) + "_" // the longest valid prefix
	_, err := parsePrefix(prefix)
	require.NoError(t, err)
	for _, name := range []string{
		templateName(prefix, shop.Scale{TopOrders: 1_000_000_000}) + "_building",
		runName(prefix, "0a1b2c3d", "read_top1000000000"),
		derivedName(prefix, "a234567890123456789") + "_building",
		runName(prefix, "0a1b2c3d", "clone_9223372036854775807"),
	} {
		assert.LessOrEqual(t, len(name), 63, "PostgreSQL would truncate %s", name)
	}
}

func TestRunIDsAreRandomHex(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		id := newRunID()
		require.Regexp(t, `^[0-9a-f]{8}$`, id)
		assert.NotPanics(t, func() { runKey(id) })
		seen[id] = true
	}
	assert.Greater(t, len(seen), 95, "100 ids from 32 random bits hardly ever repeat")
}

func TestTemplateHashFollowsTheShopsSource(t *testing.T) {
	source := fstest.MapFS{
		"generate.go":  {Data: []byte("package shop // rows")},
		"schema.sql":   {Data: []byte("CREATE TABLE users ();")},
		"shop_test.go": {Data: []byte("package shop // a test")},
		"load.go":      {Data: []byte("package shop // COPY")},
		"gateway/x.go": {Data: []byte("package gateway")},
	}
	base, err := hashSource(source)
	require.NoError(t, err)
	require.Regexp(t, `^[0-9a-f]{8}$`, base)

	source["generate.go"] = &fstest.MapFile{Data: []byte("package shop // other rows")}
	changed, err := hashSource(source)
	require.NoError(t, err)
	assert.NotEqual(t, base, changed, "a change to the generator is another template")

	source["generate.go"] = &fstest.MapFile{Data: []byte("package shop // rows")}
	source["shop_test.go"] = &fstest.MapFile{Data: []byte("package shop // another test")}
	testsOnly, err := hashSource(source)
	require.NoError(t, err)
	assert.Equal(t, base, testsOnly, "a change to the tests is the same template")

	embedded, err := hashSource(shop.Source)
	require.NoError(t, err)
	assert.Equal(t, contentHash(), embedded)
	assert.Contains(t, TemplateName(shop.Small), "_tpl_"+embedded+"_")
}

// TestSilentServerFailsFast: a server that accepts connections and never
// answers (a wedged PostgreSQL, a firewall that eats packets after the
// handshake) fails the run within seconds, naming the URL.
func TestSilentServerFailsFast(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var held sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		listener.Close()
		held.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	held.Go(func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // held open, never read or answered
			mu.Unlock()
		}
	})

	url := "postgres://silent@" + listener.Addr().String() + "/postgres?sslmode=disable&connect_timeout=600"
	started := time.Now()
	h, err := start(context.Background(), env(map[string]string{workshopenv.DatabaseURL: url}), nil)
	elapsed := time.Since(started)
	if h != nil {
		t.Cleanup(func() { h.close(context.Background()) })
	}
	require.Error(t, err)
	assert.Less(t, elapsed, 3*connectTimeout, "fails within seconds, not the 120 s of an unbounded Ping")
	assert.Contains(t, err.Error(), listener.Addr().String(), "the error names the server")
	assert.Contains(t, err.Error(), "no answer within")
}
