package rdb

import (
	"crypto/sha256"
	"encoding/hex"
)

// Idempotency is the key of an Idempotency-Key header's value in scope (a
// string such as "create" naming the operation). The client's value is
// hashed, so any bytes are safe in it.
func (k Keys) Idempotency(scope, key string) string {
	h := sha256.Sum256([]byte(key))
	return k.prefix() + ":idem:" + scope + ":" + hex.EncodeToString(h[:16])
}

// SigningKey is the key report links are signed with.
func (k Keys) SigningKey() string { return k.prefix() + ":signing-key" }

// Session is the key of a browser session: the SHA-256 of its token, so
// that what Redis holds cannot be sent back as a cookie.
func (k Keys) Session(token string) string {
	h := sha256.Sum256([]byte(token))
	return k.prefix() + ":session:" + hex.EncodeToString(h[:])
}
