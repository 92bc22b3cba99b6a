package callback

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// vectorsPath is the file of published test values, with their sources.
var vectorsPath = filepath.Join("..", "..", "testdata", "callback", "official_vectors.json")

type signatureVector struct {
	Name      string `json:"name"`
	Token     string `json:"token"`
	Timestamp string `json:"timestamp"`
	Nonce     string `json:"nonce"`
	Signature string `json:"signature"`
}

type cipherVector struct {
	Name           string `json:"name"`
	Token          string `json:"token"`
	EncodingAESKey string `json:"encoding_aes_key"`
	AppID          string `json:"app_id"`
	Timestamp      string `json:"timestamp"`
	Nonce          string `json:"nonce"`
	MsgSignature   string `json:"msg_signature"`
	Encrypt        string `json:"encrypt"`
	Random         string `json:"random"`
	Plaintext      string `json:"plaintext"`
	Body           string `json:"body"`
}

func loadVectors(t *testing.T) ([]signatureVector, []cipherVector) {
	t.Helper()
	raw, err := os.ReadFile(vectorsPath)
	require.NoError(t, err)
	var v struct {
		Signatures  []signatureVector `json:"signatures"`
		Ciphertexts []cipherVector    `json:"ciphertexts"`
	}
	require.NoError(t, json.Unmarshal(raw, &v))
	require.NotEmpty(t, v.Signatures)
	require.NotEmpty(t, v.Ciphertexts)
	return v.Signatures, v.Ciphertexts
}

// TestOfficialSignatures: the signatures of WeChat's documented examples
// come out of Signature, in any order of the parts.
func TestOfficialSignatures(t *testing.T) {
	t.Parallel()
	sigs, ciphers := loadVectors(t)
	for _, v := range sigs {
		require.Equal(t, v.Signature, Signature(v.Token, v.Timestamp, v.Nonce), v.Name)
		require.Equal(t, v.Signature, Signature(v.Nonce, v.Token, v.Timestamp), v.Name)
		require.True(t, validSignature(v.Signature, v.Token, v.Timestamp, v.Nonce), v.Name)
		require.False(t, validSignature(v.Signature, v.Token+"x", v.Timestamp, v.Nonce), v.Name)
	}
	for _, v := range ciphers {
		if v.MsgSignature == "" {
			continue
		}
		require.Equal(t, v.MsgSignature, Signature(v.Token, v.Timestamp, v.Nonce, v.Encrypt), v.Name)
	}
}

// TestOfficialCiphertextsDecrypt: every published ciphertext decrypts to
// its published message with its key and appid, and to nothing with
// another appid.
func TestOfficialCiphertextsDecrypt(t *testing.T) {
	t.Parallel()
	_, ciphers := loadVectors(t)
	for _, v := range ciphers {
		c, err := NewCrypter(v.EncodingAESKey, v.AppID)
		require.NoError(t, err, v.Name)
		msg, err := c.Decrypt(v.Encrypt)
		require.NoError(t, err, v.Name)
		if v.Plaintext != "" {
			require.Equal(t, v.Plaintext, string(msg), v.Name)
		}
		other, err := NewCrypter(v.EncodingAESKey, "wx0000000000000000")
		require.NoError(t, err)
		_, err = other.Decrypt(v.Encrypt)
		require.ErrorIs(t, err, ErrAppID, v.Name)
	}
}

// TestOfficialCiphertextsEncrypt: with the published random prefix,
// encryption gives the published ciphertext byte for byte.
func TestOfficialCiphertextsEncrypt(t *testing.T) {
	t.Parallel()
	_, ciphers := loadVectors(t)
	n := 0
	for _, v := range ciphers {
		if v.Random == "" || v.Plaintext == "" {
			continue
		}
		n++
		c, err := NewCrypter(v.EncodingAESKey, v.AppID)
		require.NoError(t, err)
		require.Len(t, v.Random, randomLen)
		got, err := c.seal([randomLen]byte([]byte(v.Random)), []byte(v.Plaintext))
		require.NoError(t, err)
		require.Equal(t, v.Encrypt, got, v.Name)
	}
	require.GreaterOrEqual(t, n, 3)
}

// TestOfficialCompatibleBody: the official Python sample's compatible-mode
// body carries the same message in plaintext and in <Encrypt>; both parse
// to the same Event.
func TestOfficialCompatibleBody(t *testing.T) {
	t.Parallel()
	_, ciphers := loadVectors(t)
	n := 0
	for _, v := range ciphers {
		if v.Body == "" {
			continue
		}
		n++
		outer, err := decodePush([]byte(v.Body))
		require.NoError(t, err)
		require.Equal(t, v.Encrypt, outer.Encrypt)
		plain, err := outer.event()
		require.NoError(t, err)

		c, err := NewCrypter(v.EncodingAESKey, v.AppID)
		require.NoError(t, err)
		inner, err := c.Decrypt(outer.Encrypt)
		require.NoError(t, err)
		decrypted, err := ParseEvent(inner)
		require.NoError(t, err)
		require.Equal(t, plain, decrypted)
		require.Equal(t, "oyORnuP8q7ou2gfYjqLzSIWZf0rs", decrypted.FromUserName)
		require.Equal(t, int64(6054768590064713728), decrypted.MsgID, "<MsgId> of a user message")
	}
	require.Equal(t, 1, n)
}
