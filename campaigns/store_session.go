package campaigns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// ErrSessionNotFound is returned for a browser session that is not stored:
// never made, logged out, or expired.
var ErrSessionNotFound = errors.New("campaigns: session not found")

// Session is a browser's login to the HTTP API, kept in Redis so that
// every serve process of a fleet accepts it. The store keeps it under the
// SHA-256 of its token; the token itself is only in the browser's cookie.
type Session struct {
	// KeyName is the name of the API key the browser logged in with.
	KeyName string `json:"key"`
	// KeyDigest is the hex SHA-256 of that key, so that the session ends
	// when its key is no longer accepted.
	KeyDigest string `json:"digest"`
	// Created and Expires bound the session.
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// CreateSession stores sess under token until sess.Expires, when Redis
// deletes it.
func (s *Store) CreateSession(ctx context.Context, token string, sess Session) error {
	if !sess.Expires.After(sess.Created) {
		return fmt.Errorf("campaigns: a session must expire after it is created (created %s, expires %s)", sess.Created, sess.Expires)
	}
	doc, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("campaigns: encode session: %w", err)
	}
	return s.r.CreateSession(ctx, token, doc, sess.Expires)
}

// Session returns the session of token, or ErrSessionNotFound.
func (s *Store) Session(ctx context.Context, token string) (Session, error) {
	doc, err := s.r.GetSession(ctx, token)
	if errors.Is(err, rdb.ErrSessionNotFound) {
		return Session{}, ErrSessionNotFound
	}
	if err != nil {
		return Session{}, err
	}
	var sess Session
	if err := json.Unmarshal(doc, &sess); err != nil {
		return Session{}, fmt.Errorf("campaigns: decode session: %w", err)
	}
	return sess, nil
}

// DeleteSession ends the session of token (a logout); an unknown token is
// no error.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	return s.r.DeleteSession(ctx, token)
}
