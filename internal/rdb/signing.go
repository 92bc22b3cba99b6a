package rdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// SigningKey returns the key every serve process signs report links with:
// 32 random bytes made by the first process that asks and kept in Redis,
// so that a link made by one process opens on any other.
func (r *RDB) SigningKey(ctx context.Context) ([]byte, error) {
	k := r.keys.SigningKey()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if err := r.c.SetNX(ctx, k, hex.EncodeToString(b[:]), 0).Err(); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	v, err := r.c.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) {
		return nil, errors.New("signing key: deleted while read")
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) != 32 {
		return nil, errors.New("signing key: the stored key is malformed")
	}
	return key, nil
}
