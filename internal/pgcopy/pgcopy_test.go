package pgcopy

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendRowWritesEachTypeAsPostgresReadsIt(t *testing.T) {
	at := time.Date(2000, 1, 1, 1, 0, 0, 123456000, time.FixedZone("x", 3600)) // 00:00:00.123456 UTC
	got := AppendRow(nil, []Value{Bigint(-7), Integer(3), {}, Text("O'Neill Müller"), Timestamptz(at)})
	want := []byte{
		0, 5, // columns
		0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf9, // bigint -7
		0, 0, 0, 4, 0, 0, 0, 3, // integer 3
		0xff, 0xff, 0xff, 0xff, // NULL
		0, 0, 0, 15, // text, in bytes (ü is two)
	}
	want = append(want, "O'Neill Müller"...)
	want = append(want, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0x01, 0xe2, 0x40) // 123,456 µs after 2000-01-01 UTC
	assert.Equal(t, want, got)
}

func TestValuesGiveBackWhatTheyWereMadeOf(t *testing.T) {
	at := time.Date(2000, 1, 1, 1, 0, 0, 123456789, time.FixedZone("x", 3600))
	values := []Value{Bigint(-7), Integer(3), {}, Text("O'Neill Müller"), Timestamptz(at)}
	var anys []any
	for _, v := range values {
		anys = append(anys, v.Any())
	}
	assert.Equal(t, []any{int64(-7), int32(3), nil, "O'Neill Müller", at.Truncate(time.Microsecond).UTC()}, anys)
	assert.Equal(t, "2000-01-01 00:00:00.123456 +0000 UTC", fmt.Sprint(Timestamptz(at).Any()), "to the microsecond, in UTC")
	assert.Equal(t, int64(-7), Bigint(-7).Int64())
	assert.Equal(t, int64(3), Integer(3).Int64())
	assert.Zero(t, Text("7").Int64(), "text is no number")
	assert.Zero(t, Bigint(7).Time(), "a number is no time")
}

// rowsOf returns n rows of two columns, row i being (i, "row i").
func rowsOf(n int) func() ([]Value, error) {
	i := 0
	row := make([]Value, 2)
	return func() ([]Value, error) {
		if i++; i > n {
			return nil, nil
		}
		row[0], row[1] = Bigint(int64(i)), Text(fmt.Sprint("row ", i))
		return row, nil
	}
}

func TestRowsReadEveryRowBetweenHeaderAndTrailer(t *testing.T) {
	for _, n := range []int{0, 1, 10_000} {
		want := []byte(Header)
		next := rowsOf(n)
		for row, _ := next(); row != nil; row, _ = next() {
			want = AppendRow(want, row)
		}
		want = append(want, Trailer...)
		got, err := io.ReadAll(NewRows(rowsOf(n)))
		require.NoError(t, err)
		assert.Equal(t, want, got, "%d rows", n)
		// A reader taking a byte at a time gets the same bytes.
		got, err = io.ReadAll(iotest.OneByteReader(NewRows(rowsOf(n))))
		require.NoError(t, err)
		assert.Equal(t, want, got, "%d rows a byte at a time", n)
	}
}

func TestRowsPassOnTheGeneratorsError(t *testing.T) {
	boom := errors.New("boom")
	_, err := io.ReadAll(NewRows(func() ([]Value, error) { return nil, boom }))
	assert.ErrorIs(t, err, boom)
}

func TestRowsWithoutANextFailInsteadOfPanicking(t *testing.T) {
	n, err := NewRows(nil).Read(make([]byte, 64))
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, ErrNoRows)
	var zero Rows
	_, err = zero.Read(make([]byte, 64))
	assert.ErrorIs(t, err, ErrNoRows)
}
