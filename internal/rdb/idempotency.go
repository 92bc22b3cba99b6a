package rdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// IdempotencyState is what ClaimIdempotency found for a key.
type IdempotencyState int

// States of an idempotency key.
const (
	// IdempotencyNew: the caller claimed the key and must do the work, then
	// call FinishIdempotency (or ReleaseIdempotency if it failed).
	IdempotencyNew IdempotencyState = iota
	// IdempotencyPending: another request with the key is at work.
	IdempotencyPending
	// IdempotencyDone: a request with the key finished; Result holds what
	// it stored.
	IdempotencyDone
)

// Idempotency is a claimed or found idempotency key.
type Idempotency struct {
	State IdempotencyState
	// Fingerprint is the fingerprint of the request that claimed the key,
	// so that a reuse with another request can be refused.
	Fingerprint string
	// Result is what FinishIdempotency stored.
	Result string
}

// ClaimIdempotency claims key in scope for ttl, recording the request's
// fingerprint, or returns what an earlier request with the key left.
func (r *RDB) ClaimIdempotency(ctx context.Context, scope, key, fingerprint string, ttl time.Duration) (Idempotency, error) {
	k := r.keys.Idempotency(scope, key)
	ok, err := r.c.SetNX(ctx, k, "pending|"+fingerprint+"|", ttl).Result()
	if err != nil {
		return Idempotency{}, fmt.Errorf("claim idempotency key: %w", err)
	}
	if ok {
		return Idempotency{State: IdempotencyNew, Fingerprint: fingerprint}, nil
	}
	v, err := r.c.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) {
		// Expired or released in between: claim again.
		return r.ClaimIdempotency(ctx, scope, key, fingerprint, ttl)
	}
	if err != nil {
		return Idempotency{}, fmt.Errorf("read idempotency key: %w", err)
	}
	state, rest, _ := strings.Cut(v, "|")
	fp, result, _ := strings.Cut(rest, "|")
	out := Idempotency{State: IdempotencyPending, Fingerprint: fp, Result: result}
	if state == "done" {
		out.State = IdempotencyDone
	}
	return out, nil
}

// FinishIdempotency records the result of the request that claimed key.
func (r *RDB) FinishIdempotency(ctx context.Context, scope, key, fingerprint, result string, ttl time.Duration) error {
	if err := r.c.Set(ctx, r.keys.Idempotency(scope, key), "done|"+fingerprint+"|"+result, ttl).Err(); err != nil {
		return fmt.Errorf("finish idempotency key: %w", err)
	}
	return nil
}

// ReleaseIdempotency drops a claimed key whose request failed, so that a
// retry can do the work.
func (r *RDB) ReleaseIdempotency(ctx context.Context, scope, key string) error {
	if err := r.c.Del(ctx, r.keys.Idempotency(scope, key)).Err(); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
