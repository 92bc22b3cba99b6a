package rdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Answers of ClaimPush.
const (
	// PushFirst: the request is new, was released by SettlePush, or its
	// processing lease ran out: the caller processes it and then settles
	// it with SettlePush.
	PushFirst = "first"
	// PushDone: the same request (same body) was processed: WeChat's
	// retry, to be answered as before without a second effect.
	PushDone = "done"
	// PushBusy: the same request is being processed now, under a lease
	// that has not run out.
	PushBusy = "busy"
	// PushReplay: the request was claimed with another body: a captured
	// query sent again with a body of someone's choosing.
	PushReplay = "replay"
)

// claimPush claims a callback request. The claim's value is
// "state|lease|digest": state p (processing, until lease, ms by the Redis
// clock), d (done) or r (released); the digest never changes once set.
//
// KEYS[1] claim. ARGV[1] digest, ARGV[2] ttl ms, ARGV[3] lease ms.
// Returns PushFirst, PushDone, PushBusy or PushReplay.
var claimPush = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = string.format('p|%d|', now + tonumber(ARGV[3])) .. ARGV[1]
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], lease, 'PX', ARGV[2])
  return 'first'
end
local state, until_, digest = string.match(cur, '^(%a)|(%d*)|(.*)$')
if digest ~= ARGV[1] then
  return 'replay'
end
if state == 'd' then
  return 'done'
end
if state == 'p' and tonumber(until_) and tonumber(until_) > now then
  return 'busy'
end
redis.call('SET', KEYS[1], lease, 'KEEPTTL')
return 'first'
`)

// settlePush ends a claim's processing: done, or released for the same
// body to be processed again.
//
// KEYS[1] claim. ARGV[1] digest, ARGV[2] "d" (done) or "r" (released).
// Returns 1 when settled, 0 when the claim is gone, of another digest or
// not processing.
var settlePush = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  return 0
end
local state, digest = string.match(cur, '^(%a)|%d*|(.*)$')
if state ~= 'p' or digest ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2] .. '||' .. digest, 'KEEPTTL')
return 1
`)

// ClaimPush claims the callback request key (the hash of its timestamp,
// nonce and signatures) with digest, the hash of its body, atomically
// across processes. The first claim of key keeps it for ttl and holds it
// as processing for lease; it answers PushFirst. Later claims answer
// PushReplay when their digest differs, whatever the claim's state;
// otherwise PushDone once the first was settled done, PushBusy while it is
// processing within its lease, and PushFirst again (a new lease, the same
// ttl) once it was released or its lease ran out (the process handling it
// died). ttl and lease must be positive; digest must not be empty.
func (r *RDB) ClaimPush(ctx context.Context, key, digest string, ttl, lease time.Duration) (string, error) {
	switch {
	case ttl <= 0 || lease <= 0:
		return "", fmt.Errorf("claim push: ttl %v and lease %v must be positive", ttl, lease)
	case digest == "" || strings.Contains(digest, "|"):
		return "", errors.New("claim push: digest is empty or holds '|'")
	}
	s, err := claimPush.Run(ctx, r.c, []string{r.keys.PushClaim(key)}, digest, ttl.Milliseconds(), lease.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("claim push: %w", err)
	}
	return s, nil
}

// SettlePush ends the processing of a request ClaimPush answered PushFirst
// with digest: done (its later claims with digest answer PushDone), or
// released when its processing failed (the next claim with digest is
// PushFirst, so that WeChat's retry is processed). Either way the claim
// keeps its digest and ttl, so another body stays a replay. It does
// nothing to a claim that is gone, of another digest or already settled.
func (r *RDB) SettlePush(ctx context.Context, key, digest string, done bool) error {
	state := "r"
	if done {
		state = "d"
	}
	if err := settlePush.Run(ctx, r.c, []string{r.keys.PushClaim(key)}, digest, state).Err(); err != nil {
		return fmt.Errorf("settle push: %w", err)
	}
	return nil
}
