package pagination

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"works-vs-scales/shop"
)

// ErrInvalidCursor is returned for a page token or cursor that this listing
// did not make: malformed, truncated, changed, signed with another key or
// with none, or a position in another user's list. It wraps
// shop.ErrInvalidPage.
var ErrInvalidCursor = fmt.Errorf("%w: not a cursor this listing made", shop.ErrInvalidPage)

// ErrWeakCursorKey is returned by NewCursorCodec for a key too short to keep
// clients from forging tokens. It wraps [shop.ErrInvalidConfig], as every
// configuration error in the workshop does.
var ErrWeakCursorKey = fmt.Errorf("cursor key too short: %w", shop.ErrInvalidConfig)

// MinCursorKeySize is the shortest key NewCursorCodec accepts, in bytes.
const MinCursorKeySize = 16

const (
	cursorVersion  = 2
	cursorDataSize = 1 + 8 + 8 + 8 // version, UserID, CreatedAt in µs, ID
	cursorMACSize  = 16
)

// CursorCodec turns cursors into opaque page tokens and back, signed with
// one key.
type CursorCodec struct {
	key []byte
}

// NewCursorCodec returns a codec that signs with key, or an error that wraps
// ErrWeakCursorKey when key is shorter than MinCursorKeySize: a token signed
// with an empty key is one any client can make.
func NewCursorCodec(key []byte) (*CursorCodec, error) {
	if len(key) < MinCursorKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrWeakCursorKey, len(key), MinCursorKeySize)
	}
	return &CursorCodec{key: append([]byte(nil), key...)}, nil
}

// Encode returns c as a page token; see EncodeCursor.
func (cc *CursorCodec) Encode(c Cursor) string { return EncodeCursor(c, cc.key) }

// Decode returns the cursor in a token Encode made; see DecodeCursor.
func (cc *CursorCodec) Decode(token string) (Cursor, error) { return DecodeCursor(token, cc.key) }

// EncodeCursor returns c as an opaque page token for a client to send back,
// signed with key, so that a token the client changed is refused rather than
// read as some other position. The token carries the user whose list c is a
// position in. A token signed with an empty key is refused by DecodeCursor:
// make keys with NewCursorCodec, which refuses them.
func EncodeCursor(c Cursor, key []byte) string {
	token := make([]byte, cursorDataSize, cursorDataSize+cursorMACSize)
	token[0] = cursorVersion
	binary.BigEndian.PutUint64(token[1:9], uint64(c.UserID))
	binary.BigEndian.PutUint64(token[9:17], uint64(c.CreatedAt.UnixMicro()))
	binary.BigEndian.PutUint64(token[17:25], uint64(c.ID))
	token = append(token, sign(token, key)...)
	return base64.RawURLEncoding.EncodeToString(token)
}

// DecodeCursor returns the cursor in a page token made by EncodeCursor with
// the same key. Any other token, and any token when key is empty, gets an
// error that wraps ErrInvalidCursor. The error never quotes the token.
func DecodeCursor(token string, key []byte) (Cursor, error) {
	if len(key) == 0 {
		return Cursor{}, fmt.Errorf("%w: no key to check its signature with", ErrInvalidCursor)
	}
	if want := base64.RawURLEncoding.EncodedLen(cursorDataSize + cursorMACSize); len(token) != want {
		return Cursor{}, fmt.Errorf("%w: %d characters, want %d", ErrInvalidCursor, len(token), want)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: not base64url: %v", ErrInvalidCursor, err)
	}
	data, mac := raw[:cursorDataSize], raw[cursorDataSize:]
	if !hmac.Equal(mac, sign(data, key)) {
		return Cursor{}, fmt.Errorf("%w: signature does not match", ErrInvalidCursor)
	}
	if data[0] != cursorVersion {
		return Cursor{}, fmt.Errorf("%w: version %d, want %d", ErrInvalidCursor, data[0], cursorVersion)
	}
	return Cursor{
		UserID:    int64(binary.BigEndian.Uint64(data[1:9])),
		CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(data[9:17]))),
		ID:        int64(binary.BigEndian.Uint64(data[17:25])),
	}, nil
}

func sign(data, key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	return mac.Sum(nil)[:cursorMACSize]
}
