package callback

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"slices"
	"strings"
)

// Signature returns WeChat's signature of parts: the lower-case hex SHA-1 of
// the parts sorted byte-wise and concatenated (wechat-api.md §7.1). The
// signature of a push is Signature(token, timestamp, nonce); the
// msg_signature of an encrypted push or reply is Signature(token, timestamp,
// nonce, encrypt). It does not modify parts.
func Signature(parts ...string) string {
	sorted := slices.Clone(parts)
	slices.Sort(sorted)
	h := sha1.New()
	for _, p := range sorted {
		_, _ = io.WriteString(h, p) // A hash never fails to write.
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validSignature reports whether got is the signature of parts. Hex case is
// ignored; the comparison takes the same time wherever the strings differ.
func validSignature(got string, parts ...string) bool {
	want := Signature(parts...)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(want)) == 1
}
