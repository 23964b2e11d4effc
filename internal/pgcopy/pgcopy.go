// Package pgcopy writes rows in the binary format of PostgreSQL's COPY, for
// seeding: numbers and times reach the server as it stores them, where text
// would have it parse each one, and a row is a slice of Values, not of any,
// so that making one boxes nothing.
package pgcopy

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"time"
)

// A Value is one column of a row: a bigint, an integer, text, a timestamptz
// or NULL (the zero Value).
type Value struct {
	kind kind
	n    int64  // bigint, integer, or timestamptz in microseconds since Unix's epoch
	s    string // text
}

// kind is the type of a Value.
type kind uint8

const (
	null kind = iota
	bigint
	integer
	text
	timestamptz
)

// Bigint returns n as a bigint.
func Bigint(n int64) Value { return Value{kind: bigint, n: n} }

// Integer returns n as an integer.
func Integer(n int32) Value { return Value{kind: integer, n: int64(n)} }

// Text returns s as text.
func Text(s string) Value { return Value{kind: text, s: s} }

// Timestamptz returns t as a timestamptz, to the microsecond PostgreSQL
// stores.
func Timestamptz(t time.Time) Value { return Value{kind: timestamptz, n: t.UnixMicro()} }

// Int64 returns a bigint or an integer as an int64, and 0 for any other kind.
func (v Value) Int64() int64 {
	if v.kind == bigint || v.kind == integer {
		return v.n
	}
	return 0
}

// Time returns a timestamptz as a time in UTC, and the zero time for any
// other kind.
func (v Value) Time() time.Time {
	if v.kind != timestamptz {
		return time.Time{}
	}
	return time.UnixMicro(v.n).UTC()
}

// Any returns v as an int64, int32, string, time.Time (UTC) or nil, for NULL.
func (v Value) Any() any {
	switch v.kind {
	case bigint:
		return v.n
	case integer:
		return int32(v.n)
	case text:
		return v.s
	case timestamptz:
		return v.Time()
	}
	return nil
}

// Header opens COPY's binary format: its signature, no flags and no header
// extension.
const Header = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// Trailer closes COPY's binary format: a row of -1 columns.
const Trailer = "\xff\xff"

// postgresEpoch is where PostgreSQL counts a timestamp's microseconds from,
// in microseconds since Unix's.
var postgresEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// AppendRow appends row to buf as one row of COPY's binary format: its
// number of columns, then each value's length and bytes as its column's
// type reads them, NULL as length -1.
func AppendRow(buf []byte, row []Value) []byte {
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(row)))
	for _, v := range row {
		switch v.kind {
		case null:
			buf = binary.BigEndian.AppendUint32(buf, math.MaxUint32) // length -1
		case bigint:
			buf = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), uint64(v.n))
		case integer:
			buf = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(buf, 4), uint32(v.n))
		case text:
			buf = append(binary.BigEndian.AppendUint32(buf, uint32(len(v.s))), v.s...)
		case timestamptz:
			buf = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), uint64(v.n-postgresEpoch))
		}
	}
	return buf
}

// Rows reads the rows next returns as COPY's binary format, from Header to
// Trailer: give it to pgconn's CopyFrom with a COPY … FROM STDIN (FORMAT
// binary). next returns a nil row after the last; it may return the same
// slice each call, its values replaced.
type Rows struct {
	next    func() ([]Value, error)
	buf     []byte // encoded, not yet read
	started bool
	done    bool
}

// ErrNoRows is returned by a Rows' Read when it was made with no function
// to return its rows.
var ErrNoRows = errors.New("pgcopy: rows made with a nil next")

// NewRows returns the rows next returns, as COPY's binary format. With a nil
// next, its Read fails with ErrNoRows.
func NewRows(next func() ([]Value, error)) *Rows { return &Rows{next: next} }

// Read fills p with the encoded rows, encoding as many as p holds.
func (r *Rows) Read(p []byte) (int, error) {
	if r.next == nil {
		return 0, ErrNoRows
	}
	if !r.started {
		r.started = true
		r.buf = append(r.buf, Header...)
	}
	for !r.done && len(r.buf) < len(p) {
		row, err := r.next()
		if err != nil {
			return 0, err
		}
		if row == nil {
			r.done = true
			r.buf = append(r.buf, Trailer...)
			break
		}
		r.buf = AppendRow(r.buf, row)
	}
	if len(r.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
	return n, nil
}
