package pgtest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoleNamesParseBackUnderTheirPrefixOnly(t *testing.T) {
	const prefix = "wvs_"
	for role, want := range map[string]string{
		runName(prefix, "0a1b2c3d", "role_1"):  "0a1b2c3d",
		runName(prefix, "0a1b2c3d", "role_42"): "0a1b2c3d",
		// Never the harness's, however close:
		"wvs_run_0a1b2c3d_clone_1":      "", // a database's name
		"wvs_run_0a1b2c3d_clone_1_app":  "", // lesson 13's roles before they were the harness's
		"wvs_run_0A1B2C3D_role_1":       "",
		"wvs_run_0a1b2c3d_role_":        "",
		"wvs_run_0a1b2c3d_role_1; DROP": "",
		"wvs_alice_run_0a1b2c3d_role_1": "", // another, longer prefix's
		"postgres":                      "",
		"wvs_":                          "",
	} {
		assert.Equal(t, want, parseRole(prefix, role), role)
	}
}

func TestRoleNamesFitPostgreSQLsLimit(t *testing.T) {
	prefix := strings.Repeat("a", 21) + "_" // the longest valid prefix
	name := runName(prefix, "0a1b2c3d", "role_9223372036854775807")
	assert.LessOrEqual(t, len(name), 63, "PostgreSQL would truncate %s", name)
}
