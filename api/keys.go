package api

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// KeySet is the set of accepted API keys, kept as SHA-256 digests only,
// each with a name that the audit trail and the logs show instead of the
// key. The zero KeySet accepts no key. It is safe for concurrent use once
// built.
type KeySet struct {
	keys []namedDigest
}

type namedDigest struct {
	name   string
	digest [sha256.Size]byte
}

// keyName is what a key's name may be.
var keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Add accepts key under a name made of its digest ("key-" and 8 hex
// digits). Keys shorter than 16 characters are refused: they are guessable.
func (s *KeySet) Add(key string) error { return s.AddNamed("", key) }

// AddNamed accepts key under name: letters, digits and . _ @ -, at most 64
// characters. An empty name is made of the key's digest.
func (s *KeySet) AddNamed(name, key string) error {
	key = strings.TrimSpace(key)
	if len(key) < 16 {
		return fmt.Errorf("api: an API key must be at least 16 characters, got %d", len(key))
	}
	return s.add(name, sha256.Sum256([]byte(key)))
}

// AddDigest accepts the key whose SHA-256 is hexDigest (64 hex digits),
// under name (made of the digest when empty).
func (s *KeySet) AddDigest(name, hexDigest string) error {
	b, err := hex.DecodeString(strings.TrimSpace(hexDigest))
	if err != nil || len(b) != sha256.Size {
		return errors.New("api: a key digest must be 64 hex digits (sha256)")
	}
	return s.add(name, [sha256.Size]byte(b))
}

func (s *KeySet) add(name string, d [sha256.Size]byte) error {
	if name == "" {
		name = "key-" + hex.EncodeToString(d[:4])
	}
	if !keyName.MatchString(name) {
		return fmt.Errorf("api: key name %q: use letters, digits and . _ @ -, at most 64 characters", name)
	}
	for _, k := range s.keys {
		if k.name == name {
			return fmt.Errorf("api: key name %q is used twice", name)
		}
	}
	s.keys = append(s.keys, namedDigest{name: name, digest: d})
	return nil
}

// ParseKey adds one key in the form of a keys-file line: "[NAME ]KEY" or
// "[NAME ]sha256:HEX".
func (s *KeySet) ParseKey(line string) error {
	fields := strings.Fields(line)
	var name, key string
	switch len(fields) {
	case 1:
		key = fields[0]
	case 2:
		name, key = fields[0], fields[1]
	default:
		return errors.New("api: a key is KEY, NAME KEY, sha256:HEX or NAME sha256:HEX")
	}
	if d, ok := strings.CutPrefix(key, "sha256:"); ok {
		return s.AddDigest(name, d)
	}
	return s.AddNamed(name, key)
}

// ReadKeys adds the keys of a file, one per line: a key, or "sha256:" and
// the hex SHA-256 of a key (`printf %s KEY | sha256sum`), either of them
// after a name and a space ("alice sha256:..."). Blank lines and lines
// starting with # are skipped. Errors name the line, never the key.
func (s *KeySet) ReadKeys(r io.Reader) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if err := s.ParseKey(l); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("api: read keys: %w", err)
	}
	return nil
}

// Len returns the number of accepted keys.
func (s *KeySet) Len() int { return len(s.keys) }

// Valid reports whether key is accepted.
func (s *KeySet) Valid(key string) bool {
	_, ok := s.Lookup(key)
	return ok
}

// Lookup returns the name of key when it is accepted. It compares the
// key's digest with every accepted one in constant time, so that neither
// which key matched nor how much of it did shows in the timing.
func (s *KeySet) Lookup(key string) (name string, ok bool) {
	if key == "" {
		return "", false
	}
	return s.lookupDigest(sha256.Sum256([]byte(key)))
}

func (s *KeySet) lookupDigest(d [sha256.Size]byte) (name string, ok bool) {
	match := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(d[:], s.keys[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", false
	}
	return s.keys[match].name, true
}
