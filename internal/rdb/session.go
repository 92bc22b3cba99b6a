package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrSessionNotFound is returned for a browser session that is not stored:
// never made, logged out, or expired.
var ErrSessionNotFound = errors.New("rdb: session not found")

// ErrSessionExists is returned when a new session's token is stored
// already (two random 256-bit tokens that collide: never in practice).
var ErrSessionExists = errors.New("rdb: session exists")

// CreateSession stores a browser session's record under the SHA-256 of its
// token until expires (Redis's PXAT, by the server's clock), so that it
// ends by itself. Only the token's digest reaches Redis.
func (r *RDB) CreateSession(ctx context.Context, token string, record []byte, expires time.Time) error {
	err := r.c.SetArgs(ctx, r.keys.Session(token), record, redis.SetArgs{Mode: "NX", ExpireAt: expires}).Err()
	if errors.Is(err, redis.Nil) {
		return ErrSessionExists
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession returns the record of the session of token, or
// ErrSessionNotFound.
func (r *RDB) GetSession(ctx context.Context, token string) ([]byte, error) {
	b, err := r.c.Get(ctx, r.keys.Session(token)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrSessionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return b, nil
}

// DeleteSession deletes the session of token; a session that is not stored
// is no error.
func (r *RDB) DeleteSession(ctx context.Context, token string) error {
	if err := r.c.Del(ctx, r.keys.Session(token)).Err(); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
