package callback

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// EncodingAESKeyLen is the length of an EncodingAESKey: 43 letters or
// digits, the base64 of a 32-byte AES key without its "=" padding.
const EncodingAESKeyLen = 43

// Layout of a safe-mode plaintext (wechat-api.md §7.4).
const (
	randomLen = 16 // random prefix
	lengthLen = 4  // big-endian message length
	headerLen = randomLen + lengthLen
	// padBlock is WeChat's PKCS#7 block: 32 bytes, not AES's 16.
	padBlock = 32
	keyLen   = 32
)

// Errors of Crypter. Every error NewCrypter and Decrypt return wraps one of
// them; none contains a key.
var (
	// ErrKey is an EncodingAESKey that is not 43 letters or digits decoding
	// to 32 bytes.
	ErrKey = errors.New("callback: invalid EncodingAESKey")
	// ErrCiphertext is an <Encrypt> value that is not valid base64, not a
	// whole number of AES blocks, badly padded, or whose length field does
	// not fit: garbage, or a message encrypted with another key.
	ErrCiphertext = errors.New("callback: invalid ciphertext")
	// ErrAppID is a ciphertext that decrypted correctly but names another
	// appid than the Crypter's.
	ErrAppID = errors.New("callback: ciphertext is for another appid")
)

// Crypter decrypts and encrypts the bodies of safe-mode and compatible-mode
// pushes for one Official Account. It holds the current key and optionally
// the previous one (see WithPrevious). A Crypter is immutable and safe for
// concurrent use. Printing it with any fmt verb shows the appid only.
type Crypter struct {
	appID string
	keys  []*aesKey // the current key first
}

// aesKey is one decoded EncodingAESKey.
type aesKey struct {
	block cipher.Block
	iv    [aes.BlockSize]byte // the first 16 bytes of the key
}

// NewCrypter returns a Crypter for the account appID with encodingAESKey,
// the 43-character EncodingAESKey configured on the WeChat platform.
// AESKey = base64-decode(encodingAESKey + "=") must give 32 bytes. Errors
// wrap ErrKey and say what is wrong without showing the key.
func NewCrypter(encodingAESKey, appID string) (*Crypter, error) {
	if appID == "" {
		return nil, errors.New("callback: empty appid")
	}
	k, err := decodeKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	return &Crypter{appID: appID, keys: []*aesKey{k}}, nil
}

// WithPrevious returns a Crypter that also tries previousKey, the
// EncodingAESKey in use before the current one, when a ciphertext does not
// decrypt with the current key (wechat-api.md §7.4, key rotation). Encrypt
// always uses the current key. An empty previousKey returns c unchanged.
func (c *Crypter) WithPrevious(previousKey string) (*Crypter, error) {
	if previousKey == "" {
		return c, nil
	}
	k, err := decodeKey(previousKey)
	if err != nil {
		return nil, fmt.Errorf("previous key: %w", err)
	}
	return &Crypter{appID: c.appID, keys: []*aesKey{c.keys[0], k}}, nil
}

func decodeKey(encodingAESKey string) (*aesKey, error) {
	if n := len(encodingAESKey); n != EncodingAESKeyLen {
		return nil, fmt.Errorf("%w: %d characters, want %d", ErrKey, n, EncodingAESKeyLen)
	}
	for i := 0; i < len(encodingAESKey); i++ {
		if !isAlnum(encodingAESKey[i]) {
			return nil, fmt.Errorf("%w: a character other than a letter or digit", ErrKey)
		}
	}
	// Not Strict: the 43rd character carries 2 bits past the 32 bytes, and
	// WeChat's keys (like the official samples') do not zero them.
	raw, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(raw) != keyLen {
		return nil, fmt.Errorf("%w: does not decode to %d bytes", ErrKey, keyLen)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	k := &aesKey{block: block}
	copy(k.iv[:], raw[:aes.BlockSize])
	return k, nil
}

func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// AppID returns the appid the Crypter checks and writes.
func (c *Crypter) AppID() string { return c.appID }

// Format prints "callback.Crypter(APPID)" for every verb, so that no key
// material reaches a log. It has a value receiver so that a copied Crypter
// prints the same.
func (c Crypter) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "callback.Crypter("+c.appID+")")
}

// Decrypt decrypts the base64 content of an <Encrypt> element and returns
// the message it carries, after checking the padding, every length and the
// trailing appid. It tries the current key, then the previous one. Errors
// wrap ErrCiphertext or ErrAppID (the current key's error when both keys
// fail); garbage never panics.
func (c *Crypter) Decrypt(b64 string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %w", ErrCiphertext, err)
	}
	var first error
	for _, k := range c.keys {
		msg, err := c.open(k, raw)
		if err == nil {
			return msg, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// open decrypts raw with k and unpacks it.
func (c *Crypter) open(k *aesKey, raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte blocks", ErrCiphertext, len(raw), aes.BlockSize)
	}
	plain := make([]byte, len(raw))
	cipher.NewCBCDecrypter(k.block, k.iv[:]).CryptBlocks(plain, raw)

	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > padBlock || pad > len(plain) {
		return nil, fmt.Errorf("%w: padding byte %d is not in 1..%d", ErrCiphertext, pad, padBlock)
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: padding bytes differ", ErrCiphertext)
		}
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes of plaintext, fewer than the %d of random and length", ErrCiphertext, len(plain), headerLen)
	}
	n := binary.BigEndian.Uint32(plain[randomLen:headerLen])
	if left := len(plain) - headerLen; uint64(n) > uint64(left) {
		return nil, fmt.Errorf("%w: message length %d, but %d bytes follow", ErrCiphertext, n, left)
	}
	msg := plain[headerLen : headerLen+int(n)]
	if appID := plain[headerLen+int(n):]; string(appID) != c.appID {
		return nil, fmt.Errorf("%w: got %s, want %s", ErrAppID, quoteShort(string(appID)), strconv.Quote(c.appID))
	}
	return msg, nil
}

// Encrypt encrypts msg for the account with the current key and a fresh
// random prefix, and returns the base64 text of an <Encrypt> element. It
// fails only if msg is longer than 4 GiB or the system's random source
// fails.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	var random [randomLen]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", fmt.Errorf("callback: encrypt: random: %w", err)
	}
	return c.seal(random, msg)
}

// seal encrypts msg behind the given random prefix.
func (c *Crypter) seal(random [randomLen]byte, msg []byte) (string, error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return "", fmt.Errorf("callback: encrypt: message of %d bytes is too long", len(msg))
	}
	n := headerLen + len(msg) + len(c.appID)
	pad := padBlock - n%padBlock
	buf := make([]byte, n+pad)
	copy(buf, random[:])
	binary.BigEndian.PutUint32(buf[randomLen:headerLen], uint32(len(msg)))
	copy(buf[headerLen:], msg)
	copy(buf[headerLen+len(msg):], c.appID)
	for i := n; i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	k := c.keys[0]
	cipher.NewCBCEncrypter(k.block, k.iv[:]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// quoteShort quotes s, cut to 40 bytes, for an error message about input
// that may be garbage.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}
