package callback_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat/callback"
)

const (
	testToken  = "tok3f9a1c2e77"
	testKey    = "Zq8XrT3vLmN0pWd5YbK2sHc7JfG4aE9uQiR1oVxMn6B"
	testOldKey = "hK4mP9qW2eR7tY1uI6oA3sD8fG5jL0zXcV2bN7mQw4E"
	testAppID  = "wx00000000000fake1"
)

func newCrypter(t testing.TB, key, appID string) *callback.Crypter {
	t.Helper()
	c, err := callback.NewCrypter(key, appID)
	require.NoError(t, err)
	return c
}

// TestCrypterRoundTrip: messages of every length around the 32-byte
// padding boundary, including empty, come back unchanged, and every
// ciphertext is a whole number of 32-byte blocks.
func TestCrypterRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCrypter(t, testKey, testAppID)
	for n := range 100 {
		msg := bytes.Repeat([]byte{byte('a' + n%26)}, n)
		enc, err := c.Encrypt(msg)
		require.NoError(t, err)
		raw, err := base64.StdEncoding.DecodeString(enc)
		require.NoError(t, err)
		require.Zero(t, len(raw)%32, "length %d", n)
		got, err := c.Decrypt(enc)
		require.NoError(t, err)
		require.Equal(t, msg, got, "length %d", n)
	}
	a, err := c.Encrypt([]byte("same"))
	require.NoError(t, err)
	b, err := c.Encrypt([]byte("same"))
	require.NoError(t, err)
	require.NotEqual(t, a, b, "the random prefix differs")
}

// TestNewCrypterRejectsBadKeys: keys of the wrong length or alphabet are
// refused with ErrKey, and the error never shows the key.
func TestNewCrypterRejectsBadKeys(t *testing.T) {
	t.Parallel()
	for name, key := range map[string]string{
		"empty":     "",
		"short":     testKey[:42],
		"long":      testKey + "A",
		"padded":    testKey[:42] + "=",
		"plus":      testKey[:42] + "+",
		"non-ascii": testKey[:41] + "é",
		"space":     " " + testKey[1:],
	} {
		_, err := callback.NewCrypter(key, testAppID)
		require.ErrorIs(t, err, callback.ErrKey, name)
		if len(key) > 8 {
			require.NotContains(t, err.Error(), key[1:40], name)
		}
	}
	_, err := callback.NewCrypter(testKey, "")
	require.Error(t, err)
	_, err = newCrypter(t, testKey, testAppID).WithPrevious("bad")
	require.ErrorIs(t, err, callback.ErrKey)
}

// TestDecryptRejectsGarbage: garbage of every kind is an ErrCiphertext (or
// ErrAppID) error, never a panic and never a message.
func TestDecryptRejectsGarbage(t *testing.T) {
	t.Parallel()
	c := newCrypter(t, testKey, testAppID)
	b64 := base64.StdEncoding.EncodeToString
	good, err := c.Encrypt([]byte("<xml/>"))
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(good)
	require.NoError(t, err)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 0x55 // garbles the last block: bad padding

	for name, in := range map[string]string{
		"empty":           "",
		"not base64":      "%%%%",
		"one byte":        b64([]byte{1}),
		"15 bytes":        b64(make([]byte, 15)),
		"17 bytes":        b64(make([]byte, 17)),
		"zero block":      b64(make([]byte, 16)),
		"zero blocks":     b64(make([]byte, 64)),
		"garbled padding": b64(flipped),
		"truncated":       b64(raw[:len(raw)-16]),
		"other key":       mustEncrypt(t, newCrypter(t, testOldKey, testAppID), "<xml/>"),
	} {
		msg, err := c.Decrypt(in)
		require.ErrorIs(t, err, callback.ErrCiphertext, name)
		require.Nil(t, msg, name)
	}
	_, err = c.Decrypt(mustEncrypt(t, newCrypter(t, testKey, "wx00000000000fake2"), "<xml/>"))
	require.ErrorIs(t, err, callback.ErrAppID)
	require.ErrorContains(t, err, `"wx00000000000fake2"`)
}

func mustEncrypt(t testing.TB, c *callback.Crypter, msg string) string {
	t.Helper()
	s, err := c.Encrypt([]byte(msg))
	require.NoError(t, err)
	return s
}

// TestCrypterKeyRotation: a Crypter with a previous key decrypts what the
// old key encrypted, and encrypts with the current key only.
func TestCrypterKeyRotation(t *testing.T) {
	t.Parallel()
	old := newCrypter(t, testOldKey, testAppID)
	cur := newCrypter(t, testKey, testAppID)
	both, err := cur.WithPrevious(testOldKey)
	require.NoError(t, err)

	msg, err := both.Decrypt(mustEncrypt(t, old, "from before the change"))
	require.NoError(t, err)
	require.Equal(t, "from before the change", string(msg))
	_, err = cur.Decrypt(mustEncrypt(t, old, "x"))
	require.ErrorIs(t, err, callback.ErrCiphertext, "without the previous key")

	enc := mustEncrypt(t, both, "new")
	msg, err = cur.Decrypt(enc)
	require.NoError(t, err)
	require.Equal(t, "new", string(msg))
	_, err = old.Decrypt(enc)
	require.Error(t, err, "encrypted with the current key")

	same, err := cur.WithPrevious("")
	require.NoError(t, err)
	require.Same(t, cur, same)
}

// TestCrypterPrintsNoKey: every fmt verb prints the appid, never the key.
func TestCrypterPrintsNoKey(t *testing.T) {
	t.Parallel()
	c := newCrypter(t, testKey, testAppID)
	key, err := base64.StdEncoding.DecodeString(testKey + "=")
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		for _, v := range []any{c, *c} {
			out := fmt.Sprintf(verb, v)
			require.Equal(t, "callback.Crypter("+testAppID+")", out, verb)
			require.NotContains(t, out, testKey[:10])
			require.False(t, strings.Contains(out, string(key[:8])))
		}
	}
	require.Equal(t, testAppID, c.AppID())
}
