// Package secret holds credentials (appsecrets, access tokens, API keys, AES
// keys) in a type that redacts itself wherever it is printed, logged or
// encoded, so that a secret reaches the outside only through Reveal.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// Redacted is what a String prints instead of its value.
const Redacted = "[redacted]"

// String is a secret value. Its zero value is the empty secret. Printing it
// with any fmt verb, encoding it as JSON or text, or logging it with zap's
// reflection gives Redacted; only Reveal returns the value.
type String struct {
	v string
}

// New wraps v.
func New(v string) String { return String{v: v} }

// FromFile reads a secret from the file at path, trimming surrounding
// whitespace (a trailing newline is usual in mounted secret files).
func FromFile(path string) (String, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return String{}, fmt.Errorf("read secret file: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return String{}, fmt.Errorf("secret file %s is empty", path)
	}
	return String{v: v}, nil
}

// Reveal returns the secret value. Call it only where the value is sent to
// the party that owns it (WeChat's token API, a hash comparison).
func (s String) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.v == "" }

// String returns Redacted, or "" for the empty secret so that a missing
// secret is visible in configuration dumps.
func (s String) String() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// GoString returns Redacted for %#v.
func (s String) GoString() string { return s.String() }

// Format prints Redacted for every verb, so %s, %v, %q, %x and %#v are safe.
func (s String) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalText encodes Redacted, which also covers JSON and YAML encoders.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
