package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TokenStatus says what a caller of GetToken must do next.
type TokenStatus int

const (
	// TokenOK: the stored token is good to use.
	TokenOK TokenStatus = iota
	// TokenRefresh: the stored token is still valid but due for a proactive
	// refresh, and this caller now holds the lease to do it.
	TokenRefresh
	// TokenLeased: there is no usable token and this caller holds the lease:
	// it must fetch one and call StoreToken (or ReleaseTokenLease).
	TokenLeased
	// TokenWait: there is no usable token and another process is fetching
	// one; poll again shortly.
	TokenWait
	// TokenFailed: the last fetch failed with a configuration error, cached
	// in ErrCode and ErrMsg until it expires.
	TokenFailed
)

// TokenState is the answer of GetToken. Times are durations relative to the
// Redis server's clock at the moment of the call, so that callers can turn
// them into local deadlines without trusting clocks to agree.
type TokenState struct {
	Status     TokenStatus
	Token      string
	ExpiresIn  time.Duration // until the token expires
	RefreshIn  time.Duration // until the token is due for a refresh (<= 0: due)
	ErrCode    int
	ErrMsg     string
	FetchedAgo time.Duration
}

// getToken reads an account's token and takes the fetch lease when the token
// is missing, nearly expired or due for a refresh.
//
// KEYS[1] token hash, KEYS[2] lease, KEYS[3] cached error.
// ARGV[1] lease owner, ARGV[2] lease TTL (ms), ARGV[3] minimum validity (ms):
// a token with less left than this counts as expired.
// Returns {status, token, exp-now, ref-now, now-at, errcode|"", errmsg|""}.
var getToken = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 't', 'exp', 'ref', 'at')
local tok, exp, ref, at = v[1], tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
if tok and exp and ref and at and exp - now > tonumber(ARGV[3]) then
  if now >= ref and redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return {'refresh', tok, exp - now, ref - now, now - at}
  end
  return {'ok', tok, exp - now, ref - now, now - at}
end
local e = redis.call('GET', KEYS[3])
if e then
  return {'error', e, 0, 0, 0}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'lease', '', 0, 0, 0}
end
return {'wait', '', 0, 0, 0}
`)

// GetToken reads appID's token in one round trip and, when it is missing or
// due for a refresh, tries to take the fetch lease for owner. minValid is the
// least validity a token must have left to be handed out.
func (r *RDB) GetToken(ctx context.Context, appID, owner string, leaseTTL, minValid time.Duration) (TokenState, error) {
	keys := []string{r.keys.Token(appID), r.keys.TokenLease(appID), r.keys.TokenError(appID)}
	res, err := getToken.Run(ctx, r.c, keys, owner, leaseTTL.Milliseconds(), minValid.Milliseconds()).Slice()
	if err != nil {
		return TokenState{}, fmt.Errorf("get token: %w", err)
	}
	if len(res) != 5 {
		return TokenState{}, fmt.Errorf("get token: unexpected reply of %d items", len(res))
	}
	status, _ := res[0].(string)
	val, _ := res[1].(string)
	st := TokenState{
		ExpiresIn:  ms(res[2]),
		RefreshIn:  ms(res[3]),
		FetchedAgo: ms(res[4]),
	}
	switch status {
	case "ok":
		st.Status, st.Token = TokenOK, val
	case "refresh":
		st.Status, st.Token = TokenRefresh, val
	case "lease":
		st.Status = TokenLeased
	case "wait":
		st.Status = TokenWait
	case "error":
		st.Status = TokenFailed
		code, msg, _ := strings.Cut(val, "|")
		st.ErrCode, _ = strconv.Atoi(code)
		st.ErrMsg = msg
	default:
		return TokenState{}, fmt.Errorf("get token: unexpected status %q", status)
	}
	return st, nil
}

func ms(v any) time.Duration {
	n, _ := v.(int64)
	return time.Duration(n) * time.Millisecond
}

// storeToken stores a freshly fetched token if the caller still holds the
// lease, then releases the lease and clears any cached error.
//
// KEYS[1] token hash, KEYS[2] lease, KEYS[3] cached error.
// ARGV[1] owner, ARGV[2] token, ARGV[3] expires_in (ms), ARGV[4] refresh
// ahead (ms), ARGV[5] longest wait before retrying a refresh that returned a
// token already due (ms).
// Returns {stored 0|1, exp-now, ref-now}.
var storeToken = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return {0, 0, 0}
end
local exp = now + tonumber(ARGV[3])
local ref = exp - tonumber(ARGV[4])
if ref <= now then
  ref = now + math.max(1, math.min(tonumber(ARGV[5]), math.floor((exp - now) / 4)))
end
redis.call('HSET', KEYS[1], 't', ARGV[2], 'exp', exp, 'ref', ref, 'at', now)
redis.call('PEXPIREAT', KEYS[1], exp)
redis.call('DEL', KEYS[2], KEYS[3])
return {1, exp - now, ref - now}
`)

// StoredToken is what StoreToken wrote, relative to the Redis clock.
type StoredToken struct {
	Stored    bool
	ExpiresIn time.Duration
	RefreshIn time.Duration
}

// StoreToken stores token for appID if owner still holds the fetch lease, and
// releases the lease. A token that is already within refreshAhead of its
// expiry (stable_token answers the same token until five minutes before it
// expires) is next refreshed after at most retryMax.
func (r *RDB) StoreToken(ctx context.Context, appID, owner, token string, expiresIn, refreshAhead, retryMax time.Duration) (StoredToken, error) {
	keys := []string{r.keys.Token(appID), r.keys.TokenLease(appID), r.keys.TokenError(appID)}
	res, err := storeToken.Run(ctx, r.c, keys, owner, token, expiresIn.Milliseconds(), refreshAhead.Milliseconds(), retryMax.Milliseconds()).Int64Slice()
	if err != nil {
		return StoredToken{}, fmt.Errorf("store token: %w", err)
	}
	if len(res) != 3 {
		return StoredToken{}, fmt.Errorf("store token: unexpected reply of %d items", len(res))
	}
	return StoredToken{
		Stored:    res[0] == 1,
		ExpiresIn: time.Duration(res[1]) * time.Millisecond,
		RefreshIn: time.Duration(res[2]) * time.Millisecond,
	}, nil
}

// storeTokenError caches a token-API configuration error if the caller still
// holds the lease, and releases the lease.
//
// KEYS[1] lease, KEYS[2] cached error. ARGV[1] owner, ARGV[2] "code|msg",
// ARGV[3] TTL (ms). Returns 1 if stored.
var storeTokenError = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
return 1
`)

// StoreTokenError caches a configuration error of the token API for ttl, so
// that other processes fail fast with it, and releases owner's lease.
func (r *RDB) StoreTokenError(ctx context.Context, appID, owner string, code int, msg string, ttl time.Duration) error {
	keys := []string{r.keys.TokenLease(appID), r.keys.TokenError(appID)}
	err := storeTokenError.Run(ctx, r.c, keys, owner, strconv.Itoa(code)+"|"+msg, ttl.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("store token error: %w", err)
	}
	return nil
}

// releaseLease deletes a lease only if owner holds it.
//
// KEYS[1] lease. ARGV[1] owner. Returns 1 if released.
var releaseLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// ReleaseTokenLease gives up owner's fetch lease for appID, if it holds it.
func (r *RDB) ReleaseTokenLease(ctx context.Context, appID, owner string) error {
	if err := releaseLease.Run(ctx, r.c, []string{r.keys.TokenLease(appID)}, owner).Err(); err != nil {
		return fmt.Errorf("release token lease: %w", err)
	}
	return nil
}

// invalidateToken deletes the stored token only if it is still the one that
// failed: compare-and-refresh, so that a laggard holding an old token never
// throws away a fresh one.
//
// KEYS[1] token hash. ARGV[1] the failed token. Returns 1 if deleted.
var invalidateToken = redis.NewScript(`
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// InvalidateToken deletes appID's stored token if it equals failed, and
// reports whether it did.
func (r *RDB) InvalidateToken(ctx context.Context, appID, failed string) (bool, error) {
	n, err := invalidateToken.Run(ctx, r.c, []string{r.keys.Token(appID)}, failed).Int()
	if err != nil {
		return false, fmt.Errorf("invalidate token: %w", err)
	}
	return n == 1, nil
}

// TokenInfo describes an account's stored token without revealing it.
type TokenInfo struct {
	Present   bool
	ExpiresAt time.Time
	RefreshAt time.Time
	FetchedAt time.Time
}

// TokenInfo reads when appID's token was fetched and when it expires.
func (r *RDB) TokenInfo(ctx context.Context, appID string) (TokenInfo, error) {
	v, err := r.c.HMGet(ctx, r.keys.Token(appID), "exp", "ref", "at").Result()
	if err != nil {
		return TokenInfo{}, fmt.Errorf("token info: %w", err)
	}
	var info TokenInfo
	times := []*time.Time{&info.ExpiresAt, &info.RefreshAt, &info.FetchedAt}
	for i, x := range v {
		s, ok := x.(string)
		if !ok {
			return TokenInfo{}, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return TokenInfo{}, fmt.Errorf("token info: field %d: %w", i, err)
		}
		*times[i] = time.UnixMilli(n)
	}
	info.Present = true
	return info, nil
}

// IsNil reports whether err is Redis's "no such key" answer.
func IsNil(err error) bool { return errors.Is(err, redis.Nil) }

// DeleteAccount deletes appID's token state (token, lease, cached error).
func (r *RDB) DeleteAccount(ctx context.Context, appID string) error {
	err := r.c.Del(ctx, r.keys.Token(appID), r.keys.TokenLease(appID), r.keys.TokenError(appID)).Err()
	if err != nil {
		return fmt.Errorf("delete account token: %w", err)
	}
	return nil
}
