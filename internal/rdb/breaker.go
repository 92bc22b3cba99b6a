package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// openBreaker opens an account's circuit breaker, or keeps it open.
//
// KEYS[1] breaker (Keys.Breaker). ARGV[1] ttl (ms, > 0).
// Returns {opened 0|1, since_ms}: opened is 1 when this call opened it,
// since when it opened (by the Redis clock). The hash lives at least ttl
// from now.
var openBreaker = redis.NewScript(`
local since = tonumber(redis.call('HGET', KEYS[1], 'since'))
local ttl = tonumber(ARGV[1])
if since then
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
  return {0, since}
end
local t = redis.call('TIME')
since = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'since', string.format('%.0f', since), 'probes', 0)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, since}
`)

// probeFailed counts a failed probe of an open breaker.
//
// KEYS[1] breaker. ARGV[1] ttl (ms, > 0).
// Returns the failed probes so far, or 0 when the breaker is not open (the
// hash is then left absent). The hash lives at least ttl from now.
var probeFailed = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'probes', 1)
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return n
`)

// closeBreaker closes a breaker.
//
// KEYS[1] breaker.
// Returns since_ms of the breaker closed, or 0 when it was not open.
var closeBreaker = redis.NewScript(`
local since = tonumber(redis.call('HGET', KEYS[1], 'since'))
if not since then return 0 end
redis.call('DEL', KEYS[1])
return since
`)

// BreakerState is an account's circuit breaker as Redis holds it.
type BreakerState struct {
	// Open is true while the breaker is open.
	Open bool
	// Since is when it opened, by the Redis clock; zero when closed.
	Since time.Time
	// Probes counts the failed probes since it opened.
	Probes int
}

// OpenBreaker opens appID's circuit breaker, or keeps an open one, and
// makes it last at least ttl from now (an open breaker expires unless
// something extends it, so that one left by a fleet that died closes by
// itself). It reports whether this call opened it, and since when it is
// open.
func (r *RDB) OpenBreaker(ctx context.Context, appID string, ttl time.Duration) (opened bool, since time.Time, err error) {
	res, err := openBreaker.Run(ctx, r.c, []string{r.keys.Breaker(appID)}, max(1, ttl.Milliseconds())).Int64Slice()
	if err != nil {
		return false, time.Time{}, fmt.Errorf("open breaker: %w", err)
	}
	if len(res) != 2 {
		return false, time.Time{}, fmt.Errorf("open breaker: unexpected reply of %d items", len(res))
	}
	return res[0] == 1, time.UnixMilli(res[1]), nil
}

// BreakerProbeFailed counts a failed probe of appID's open breaker and
// makes it last at least ttl from now. It returns the failed probes so
// far, 0 when the breaker is not open (then nothing is stored).
func (r *RDB) BreakerProbeFailed(ctx context.Context, appID string, ttl time.Duration) (int, error) {
	n, err := probeFailed.Run(ctx, r.c, []string{r.keys.Breaker(appID)}, max(1, ttl.Milliseconds())).Int()
	if err != nil {
		return 0, fmt.Errorf("breaker probe failed: %w", err)
	}
	return n, nil
}

// CloseBreaker closes appID's breaker. It reports whether it was open, and
// since when.
func (r *RDB) CloseBreaker(ctx context.Context, appID string) (bool, time.Time, error) {
	since, err := closeBreaker.Run(ctx, r.c, []string{r.keys.Breaker(appID)}).Int64()
	if err != nil {
		return false, time.Time{}, fmt.Errorf("close breaker: %w", err)
	}
	if since == 0 {
		return false, time.Time{}, nil
	}
	return true, time.UnixMilli(since), nil
}

// Breaker reads appID's breaker.
func (r *RDB) Breaker(ctx context.Context, appID string) (BreakerState, error) {
	v, err := r.c.HMGet(ctx, r.keys.Breaker(appID), "since", "probes").Result()
	if err != nil {
		return BreakerState{}, fmt.Errorf("breaker: %w", err)
	}
	s, _ := v[0].(string)
	if s == "" {
		return BreakerState{}, nil
	}
	var since int64
	if _, err := fmt.Sscan(s, &since); err != nil {
		return BreakerState{}, fmt.Errorf("breaker: since %q: %w", s, err)
	}
	st := BreakerState{Open: true, Since: time.UnixMilli(since)}
	if p, _ := v[1].(string); p != "" {
		_, _ = fmt.Sscan(p, &st.Probes)
	}
	return st, nil
}

// ClaimBreakerProbe claims appID's next probe slot for hold: it reports
// true to the one caller of the fleet that sets it, false to the others
// until hold has passed.
func (r *RDB) ClaimBreakerProbe(ctx context.Context, appID, owner string, hold time.Duration) (bool, error) {
	err := r.c.SetArgs(ctx, r.keys.BreakerProbe(appID), owner, redis.SetArgs{Mode: "NX", TTL: max(time.Millisecond, hold)}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim breaker probe: %w", err)
	}
	return true, nil
}
