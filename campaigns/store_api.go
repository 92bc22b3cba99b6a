package campaigns

import (
	"context"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// What the HTTP API keeps beside campaigns: the claims of its
// Idempotency-Keys, the key that signs report links, and a readiness ping.
// They go through the Store so that the API, like the producer and the
// worker, has one door to Redis.

// Idempotency is the state of an Idempotency-Key claim.
type Idempotency = rdb.Idempotency

// The states of an Idempotency-Key.
const (
	IdempotencyNew     = rdb.IdempotencyNew
	IdempotencyPending = rdb.IdempotencyPending
	IdempotencyDone    = rdb.IdempotencyDone
)

// ClaimIdempotency claims key in scope for a request with fingerprint, for
// ttl, or returns the claim that holds it (see rdb.RDB.ClaimIdempotency).
func (s *Store) ClaimIdempotency(ctx context.Context, scope, key, fingerprint string, ttl time.Duration) (Idempotency, error) {
	return s.r.ClaimIdempotency(ctx, scope, key, fingerprint, ttl)
}

// FinishIdempotency stores the answer of the request that claimed key.
func (s *Store) FinishIdempotency(ctx context.Context, scope, key, fingerprint, result string, ttl time.Duration) error {
	return s.r.FinishIdempotency(ctx, scope, key, fingerprint, result, ttl)
}

// ReleaseIdempotency drops the claim of a request that failed, so that a
// retry with key runs again.
func (s *Store) ReleaseIdempotency(ctx context.Context, scope, key string) error {
	return s.r.ReleaseIdempotency(ctx, scope, key)
}

// SigningKey returns the key that signs report links, made once for the
// whole fleet.
func (s *Store) SigningKey(ctx context.Context) ([]byte, error) { return s.r.SigningKey(ctx) }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.r.Client().Ping(ctx).Err() }

// List returns campaign ids by creation time, newest first, from offset,
// at most limit, and how many campaigns there are.
func (s *Store) List(ctx context.Context, offset, limit int64) ([]string, int64, error) {
	return s.r.ListCampaigns(ctx, offset, limit)
}

// CountStates counts the campaigns by state.
func (s *Store) CountStates(ctx context.Context) (map[string]int64, error) {
	return s.r.CountCampaignStates(ctx)
}
