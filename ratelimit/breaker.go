package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// Breakers holds the circuit breakers of the accounts, shared by every
// process through Redis. A breaker is open while WeChat is unreachable for
// the account; the worker (package worker) decides when to open and close
// it, and pauses the account's buckets (Limiter.PauseOutage) meanwhile.
// An open breaker lasts as long as its lease, which Open and ProbeFailed
// extend, so that one left open by a fleet that went away closes by
// itself. Breakers is safe for concurrent use.
type Breakers struct {
	rdb *rdb.RDB
}

// NewBreakers returns the breakers kept in r.
func NewBreakers(r *rdb.RDB) *Breakers { return &Breakers{rdb: r} }

// BreakerState is an account's breaker.
type BreakerState struct {
	// Open is true while the breaker is open: WeChat is unreachable for
	// the account, its sends wait.
	Open bool
	// Since is when it opened, by the Redis clock; zero when closed.
	Since time.Time
	// Probes counts the failed probes since it opened.
	Probes int
}

// Open opens the breaker of appID, or keeps it open, for at least lease
// from now. It reports whether this call opened it and since when it is
// open. It returns when Redis has answered, or with an error wrapping
// ctx.Err() or the Redis failure.
func (b *Breakers) Open(ctx context.Context, appID string, lease time.Duration) (opened bool, since time.Time, err error) {
	opened, since, err = b.rdb.OpenBreaker(ctx, appID, lease)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("ratelimit: open breaker %s: %w", appID, err)
	}
	return opened, since, nil
}

// ProbeFailed counts a failed probe of appID's open breaker and keeps it
// open for at least lease from now. It returns the failed probes so far,
// or 0 when the breaker is no longer open (closed meanwhile, or lapsed).
func (b *Breakers) ProbeFailed(ctx context.Context, appID string, lease time.Duration) (int, error) {
	n, err := b.rdb.BreakerProbeFailed(ctx, appID, lease)
	if err != nil {
		return 0, fmt.Errorf("ratelimit: breaker %s: %w", appID, err)
	}
	return n, nil
}

// Close closes appID's breaker. It reports whether it was open and since
// when.
func (b *Breakers) Close(ctx context.Context, appID string) (bool, time.Time, error) {
	was, since, err := b.rdb.CloseBreaker(ctx, appID)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("ratelimit: close breaker %s: %w", appID, err)
	}
	return was, since, nil
}

// State reads appID's breaker.
func (b *Breakers) State(ctx context.Context, appID string) (BreakerState, error) {
	s, err := b.rdb.Breaker(ctx, appID)
	if err != nil {
		return BreakerState{}, fmt.Errorf("ratelimit: breaker %s: %w", appID, err)
	}
	return BreakerState{Open: s.Open, Since: s.Since, Probes: s.Probes}, nil
}

// ClaimProbe claims appID's next probe for owner (a token naming the
// process): it reports true to exactly one caller of the fleet per hold,
// which probes WeChat; the others wait for the claim to lapse.
func (b *Breakers) ClaimProbe(ctx context.Context, appID, owner string, hold time.Duration) (bool, error) {
	ok, err := b.rdb.ClaimBreakerProbe(ctx, appID, owner, hold)
	if err != nil {
		return false, fmt.Errorf("ratelimit: breaker %s: %w", appID, err)
	}
	return ok, nil
}

// Breakers returns the accounts' circuit breakers, kept in the limiter's
// Redis.
func (l *Limiter) Breakers() *Breakers { return NewBreakers(l.rdb) }
