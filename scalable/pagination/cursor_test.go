package pagination

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"works-vs-scales/shop"
)

var testKey = []byte("lesson 2 test key")

func TestCursorRoundTrips(t *testing.T) {
	c := Cursor{UserID: 17, CreatedAt: time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC), ID: 424242}
	got, err := DecodeCursor(EncodeCursor(c, testKey), testKey)
	require.NoError(t, err)
	assert.True(t, c.CreatedAt.Equal(got.CreatedAt))
	assert.Equal(t, c.ID, got.ID)
	assert.Equal(t, c.UserID, got.UserID, "the cursor says whose list it is a position in")
}

func TestCursorKeyMustBeAKey(t *testing.T) {
	for _, key := range [][]byte{nil, {}, []byte("short")} {
		_, err := NewCursorCodec(key)
		assert.ErrorIs(t, err, ErrWeakCursorKey, "%q", key)
		assert.ErrorIs(t, err, shop.ErrInvalidConfig, "%q: a configuration error, as every constructor's", key)
	}
	codec, err := NewCursorCodec(testKey)
	require.NoError(t, err)
	c := Cursor{UserID: 3, CreatedAt: time.UnixMicro(1_700_000_000_000_000).UTC(), ID: 9}
	got, err := codec.Decode(codec.Encode(c))
	require.NoError(t, err)
	assert.Equal(t, c.UserID, got.UserID)
	assert.True(t, c.CreatedAt.Equal(got.CreatedAt))
	assert.Equal(t, c.ID, got.ID)

	// A token signed with no key is one anybody can make: never accepted.
	forged := EncodeCursor(c, nil)
	_, err = DecodeCursor(forged, nil)
	assert.ErrorIs(t, err, ErrInvalidCursor)
	_, err = DecodeCursor(forged, []byte{})
	assert.ErrorIs(t, err, ErrInvalidCursor)
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
	_, err := DecodeCursor(strings.Repeat("A", 1<<20), testKey)
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200, "the error never echoes the token")
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
