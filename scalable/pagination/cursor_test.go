package pagination

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testKey = []byte("lesson 2 test key")

func TestCursorRoundTrips(t *testing.T) {
	c := Cursor{CreatedAt: time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC), ID: 424242}
	got, err := DecodeCursor(EncodeCursor(c, testKey), testKey)
	require.NoError(t, err)
	assert.True(t, c.CreatedAt.Equal(got.CreatedAt))
	assert.Equal(t, c.ID, got.ID)
}

func TestCursorRefusesWhatItDidNotMake(t *testing.T) {
	token := EncodeCursor(Cursor{CreatedAt: time.Now(), ID: 7}, testKey)
	tampered := []byte(token)
	tampered[5] ^= 1
	for name, bad := range map[string]string{
		"empty":        "",
		"not base64":   "not a cursor!",
		"truncated":    token[:len(token)-3],
		"tampered":     string(tampered),
		"an offset":    "20",
		"another key":  EncodeCursor(Cursor{CreatedAt: time.Now(), ID: 7}, []byte("other key")),
		"extra suffix": token + "AA",
	} {
		_, err := DecodeCursor(bad, testKey)
		assert.ErrorIs(t, err, ErrInvalidCursor, name)
	}
}

// FuzzDecodeCursor: whatever a client sends, decoding never panics, and what
// it accepts is exactly what EncodeCursor makes.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(Cursor{CreatedAt: time.UnixMicro(1), ID: 1}, testKey))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := DecodeCursor(token, testKey)
		if err != nil {
			assert.ErrorIs(t, err, ErrInvalidCursor)
			return
		}
		assert.Equal(t, token, EncodeCursor(c, testKey))
	})
}
