package shop

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCopyTextEscapesWhatCopyGivesAMeaningTo(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2021, 3, 4, 5, 6, 7, 123456000, time.FixedZone("x", 3600))
	require.NoError(t, appendCopyText(&buf, []any{int64(-7), int32(3), nil, "a\tb\nc\\d\re O'Neill Müller", at}))
	assert.Equal(t, "-7\t3\t\\N\ta\\tb\\nc\\\\d\\re O'Neill Müller\t2021-03-04 04:06:07.123456+00\n", buf.String())
	assert.Error(t, appendCopyText(&buf, []any{1.5}), "a type COPY's text is not written for")
}

func TestTextRowsReadEveryGeneratedRow(t *testing.T) {
	for _, table := range tables {
		var want bytes.Buffer
		next := table.rows(tiny, 1)
		rows := 0
		for row, err := next(); row != nil; row, err = next() {
			require.NoError(t, err)
			require.NoError(t, appendCopyText(&want, row))
			rows++
		}
		got, err := io.ReadAll(&textRows{next: table.rows(tiny, 1)})
		require.NoError(t, err)
		assert.Equal(t, want.String(), string(got), table.name)
		assert.Equal(t, rows, strings.Count(string(got), "\n"), table.name)
	}
}

func TestIndexStepsKeepEveryStatementOnce(t *testing.T) {
	keys, rest := indexSteps(Indexes)
	var all []string
	for _, step := range append(keys, rest...) {
		all = append(all, step...)
	}
	statements := regexp.MustCompile(`(?m)^(ALTER|CREATE|SELECT) `).FindAllString(Indexes, -1)
	assert.Len(t, all, len(statements), "every statement, once")
	for _, step := range keys {
		assert.Regexp(t, `PRIMARY KEY|UNIQUE`, step[0])
	}
	for _, step := range rest {
		assert.NotContains(t, step[0], "PRIMARY KEY")
		if strings.Contains(step[0], "GENERATED") {
			require.Len(t, step, 2, "setval runs after the identity it sets")
			assert.Contains(t, step[1], "setval")
		}
	}
}
