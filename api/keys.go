package api

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeySet is the set of accepted API keys, kept as SHA-256 digests only.
// The zero KeySet accepts no key. It is safe for concurrent use once built.
type KeySet struct {
	digests [][sha256.Size]byte
}

// Add accepts key. Keys shorter than 16 characters are refused: they are
// guessable.
func (s *KeySet) Add(key string) error {
	key = strings.TrimSpace(key)
	if len(key) < 16 {
		return fmt.Errorf("api: an API key must be at least 16 characters, got %d", len(key))
	}
	s.digests = append(s.digests, sha256.Sum256([]byte(key)))
	return nil
}

// AddDigest accepts the key whose SHA-256 is hexDigest (64 hex digits).
func (s *KeySet) AddDigest(hexDigest string) error {
	b, err := hex.DecodeString(strings.TrimSpace(hexDigest))
	if err != nil || len(b) != sha256.Size {
		return errors.New("api: a key digest must be 64 hex digits (sha256)")
	}
	s.digests = append(s.digests, [sha256.Size]byte(b))
	return nil
}

// ReadKeys adds the keys of a file, one per line: a key, or "sha256:" and
// the hex SHA-256 of a key (`printf %s KEY | sha256sum`). Blank lines and
// lines starting with # are skipped. Errors name the line, never the key.
func (s *KeySet) ReadKeys(r io.Reader) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		var err error
		if d, ok := strings.CutPrefix(l, "sha256:"); ok {
			err = s.AddDigest(d)
		} else {
			err = s.Add(l)
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("api: read keys: %w", err)
	}
	return nil
}

// Len returns the number of accepted keys.
func (s *KeySet) Len() int { return len(s.digests) }

// Valid reports whether key is accepted. It compares the key's digest with
// every accepted one in constant time, so that neither which key matched
// nor how much of it did shows in the timing.
func (s *KeySet) Valid(key string) bool {
	d := sha256.Sum256([]byte(key))
	ok := 0
	for i := range s.digests {
		ok |= subtle.ConstantTimeCompare(d[:], s.digests[i][:])
	}
	return ok == 1 && key != ""
}
