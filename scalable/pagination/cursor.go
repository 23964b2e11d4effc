package pagination

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidCursor is returned for a page token that was not made by
// EncodeCursor with the same key: malformed, truncated or changed.
var ErrInvalidCursor = errors.New("invalid page cursor")

const (
	cursorVersion  = 1
	cursorDataSize = 1 + 8 + 8 // version, CreatedAt in µs, ID
	cursorMACSize  = 16
)

// EncodeCursor returns c as an opaque page token for a client to send back,
// signed with key, so that a token the client changed is refused rather than
// read as some other position.
func EncodeCursor(c Cursor, key []byte) string {
	token := make([]byte, cursorDataSize, cursorDataSize+cursorMACSize)
	token[0] = cursorVersion
	binary.BigEndian.PutUint64(token[1:9], uint64(c.CreatedAt.UnixMicro()))
	binary.BigEndian.PutUint64(token[9:17], uint64(c.ID))
	token = append(token, sign(token, key)...)
	return base64.RawURLEncoding.EncodeToString(token)
}

// DecodeCursor returns the cursor in a page token made by EncodeCursor with
// the same key. Any other token gets an error that wraps ErrInvalidCursor.
func DecodeCursor(token string, key []byte) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: not base64url: %v", ErrInvalidCursor, err)
	}
	if len(raw) != cursorDataSize+cursorMACSize {
		return Cursor{}, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidCursor, len(raw), cursorDataSize+cursorMACSize)
	}
	data, mac := raw[:cursorDataSize], raw[cursorDataSize:]
	if !hmac.Equal(mac, sign(data, key)) {
		return Cursor{}, fmt.Errorf("%w: signature does not match", ErrInvalidCursor)
	}
	if data[0] != cursorVersion {
		return Cursor{}, fmt.Errorf("%w: version %d, want %d", ErrInvalidCursor, data[0], cursorVersion)
	}
	return Cursor{
		CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(data[1:9]))),
		ID:        int64(binary.BigEndian.Uint64(data[9:17])),
	}, nil
}

func sign(data, key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	return mac.Sum(nil)[:cursorMACSize]
}
