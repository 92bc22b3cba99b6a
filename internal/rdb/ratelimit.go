package rdb

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The rate scripts keep one token bucket per key in the hash RateBucket(key).
// The bucket holds up to burst tokens and refills at rate tokens per second
// times a slowdown factor (1 unless slowed), by the Redis server's clock, so
// that every process agrees on it. A missing hash is a full bucket: the
// scripts set the hash to expire once it would be full again and no slowdown
// or pause is pending, so idle buckets cost no memory.
//
// Times are kept in microseconds since the epoch (exact in a Lua double
// until the year 2255). Numbers are written with explicit formats, because
// how Redis turns a Lua number into a string changed between versions.

// rateLua is the prelude shared by the rate scripts.
const rateLua = `
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- factor(x): the slowdown factor at x. It is f0 at the cut sa, rises
-- linearly to 1 at sa+sr and stays 1; without a slowdown (f0 nil) it is 1.
local function factor(x, f0, sa, sr)
  if not f0 then return 1 end
  local d = x - sa
  if d <= 0 then return f0 end
  if d >= sr then return 1 end
  return f0 + (1 - f0) * d / sr
end
-- area(x): an antiderivative of factor, so that rate*(area(b)-area(a)) is
-- exactly what refills between a and b. Before the cut the factor counts as
-- f0 (the scripts bring the tokens up to date at each cut, so this only
-- matters for a bucket that was not stored then).
local function area(x, f0, sa, sr)
  if not f0 then return x end
  local d = x - sa
  if d <= 0 then return f0 * d end
  if d >= sr then return (1 + f0) * sr / 2 + (d - sr) end
  return f0 * d + (1 - f0) * d * d / (2 * sr)
end
local function num(x) return string.format('%.17g', x) end
local function int(x) return string.format('%.0f', x) end
-- slowdown(v1, v2, v3): the stored slowdown, or nil when there is none.
local function slowdown(v1, v2, v3)
  local f0, sa, sr = tonumber(v1), tonumber(v2), tonumber(v3)
  if f0 and sa and sr and sr > 0 then return f0, sa, sr end
  return nil, 0, 1
end
-- keep_until(key, now_ms, ms): make key live until at least ms, never
-- shortening the life it already has.
local function keep_until(key, now_ms, ms)
  local ttl = redis.call('PTTL', key)
  if ttl > 0 and now_ms + ttl >= ms then return end
  redis.call('PEXPIREAT', key, int(ms))
end
`

// takeRate grants up to n tokens.
//
// KEYS[1] bucket. ARGV[1] rate (tokens/s, > 0), ARGV[2] burst (>= 1),
// ARGV[3] n (>= 1), ARGV[4] daily quota (0: none), ARGV[5] the end of the
// quota's day (µs since the epoch). With a quota the bucket also counts the
// tokens granted in the day ending at ARGV[5] (fields qd, qu) and grants
// none past the quota: the answer is then a pause until the day ends.
// Returns {granted, next_us, all_us, effective rate, paused_left_us,
// paused_until_us, now_us, pause_kind}: next_us is the time until one more token is
// due and all_us until min(n-granted, burst) more are (both 0 when all n
// were granted), both at the effective rate now. While the bucket is paused
// nothing is granted and paused_left_us > 0, and pause_kind says why: 1
// for a quota pause (field pu, or the daily quota), 2 for an outage pause
// (field po, PauseRateOutage); the later-ending one is reported when both
// are set. now_us is the server's time.
var takeRate = redis.NewScript(rateLua + `
local now = now_us()
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local quota, qday = tonumber(ARGV[4]) or 0, tonumber(ARGV[5]) or 0
local v = redis.call('HMGET', KEYS[1], 'tk', 'ts', 'sf', 'sa', 'sr', 'pu', 'qd', 'qu', 'po')
local pu, po = tonumber(v[6]), tonumber(v[9])
if po then
  if now < po and not (pu and pu > po) then
    return {0, 0, 0, '0', po - now, po, now, 2}
  end
  if now >= po then redis.call('HDEL', KEYS[1], 'po') end
end
if pu then
  if now < pu then
    return {0, 0, 0, '0', pu - now, pu, now, 1}
  end
  redis.call('HDEL', KEYS[1], 'pu')
end
local used = 0
if quota > 0 then
  if tonumber(v[7]) == qday then used = tonumber(v[8]) or 0 end
  if used >= quota then
    redis.call('HSET', KEYS[1], 'qd', int(qday), 'qu', int(used))
    keep_until(KEYS[1], math.floor(now / 1000), math.ceil(qday / 1000))
    return {0, 0, 0, '0', math.max(1, qday - now), qday, now, 1}
  end
  want = math.min(want, quota - used)
end
local f0, sa, sr = slowdown(v[3], v[4], v[5])
local tk, ts = tonumber(v[1]), tonumber(v[2])
if tk and ts then
  if ts > now then ts = now end -- the server clock went back (failover)
  tk = math.min(burst, tk + rate * (area(now, f0, sa, sr) - area(ts, f0, sa, sr)) / 1e6)
else
  tk = burst
end
local got = math.max(0, math.min(want, math.floor(tk)))
tk = tk - got
local eff = rate * factor(now, f0, sa, sr)
local next_us, all_us = 0, 0
if got < want then
  next_us = math.ceil((1 - tk) * 1e6 / eff)
  all_us = math.ceil((math.min(want - got, burst) - tk) * 1e6 / eff)
end
local full = now + (burst - tk) * 1e6 / eff
if f0 then
  if now >= sa + sr then
    redis.call('HDEL', KEYS[1], 'sf', 'sa', 'sr')
  else
    full = math.max(full, sa + sr)
  end
end
redis.call('HSET', KEYS[1], 'tk', num(tk), 'ts', int(now), 'r', ARGV[1], 'b', ARGV[2])
if quota > 0 then
  redis.call('HSET', KEYS[1], 'qd', int(qday), 'qu', int(used + got))
  full = math.max(full, qday)
end
redis.call('PEXPIREAT', KEYS[1], int(math.ceil(full / 1000) + 1000))
return {got, next_us, all_us, num(eff), 0, 0, now, 0}
`)

// RateGrant is the answer of TakeRateTokens. Durations are measured by the
// Redis server's clock from the moment of the call.
type RateGrant struct {
	// Granted is the number of tokens taken, from 0 to the number asked.
	Granted int
	// NextIn is the time until one more token is due, or 0 when all the
	// tokens asked for were granted.
	NextIn time.Duration
	// AllIn is the time until the missing tokens are due, counting at most
	// burst of them (the bucket holds no more), or 0 when all were granted.
	AllIn time.Duration
	// Rate is the bucket's effective rate now, in tokens per second: the
	// rate asked for times the slowdown factor. It is 0 while paused.
	Rate float64
	// PausedFor is how long the bucket stays paused; while it is above 0
	// nothing is granted.
	PausedFor time.Duration
	// PausedUntil is when the pause ends, by the Redis clock.
	PausedUntil time.Time
	// PausedForOutage is true when the pause is an outage pause
	// (PauseRateOutage) rather than a quota pause.
	PausedForOutage bool
	// At is the Redis server's time of the grant.
	At time.Time
}

// TakeRateTokens takes up to n tokens from key's bucket, which holds at most
// burst tokens and refills at rate tokens per second (times a slowdown
// factor, see SlowRate). It takes as many as are there (never a fraction)
// and, when that is fewer than n, says how long until more are due. Each
// call records rate and burst in the bucket, for RateInfo. rate must be
// positive and finite, burst and n at least 1.
func (r *RDB) TakeRateTokens(ctx context.Context, key string, rate float64, burst, n int) (RateGrant, error) {
	return r.TakeRateTokensDaily(ctx, key, rate, burst, n, 0, time.Time{})
}

// TakeRateTokensDaily is TakeRateTokens with a daily quota: at most quota
// tokens are granted in the day that ends at dayEnd (a quota of 0 is none).
// Once they are, the grant is a pause until dayEnd (RateGrant.PausedFor).
func (r *RDB) TakeRateTokensDaily(ctx context.Context, key string, rate float64, burst, n int, quota int64, dayEnd time.Time) (RateGrant, error) {
	if !(rate > 0 && rate <= math.MaxFloat64) || burst < 1 || n < 1 || quota < 0 {
		return RateGrant{}, fmt.Errorf("take rate tokens: invalid rate %v, burst %d, n %d or quota %d", rate, burst, n, quota)
	}
	var end int64
	if quota > 0 {
		end = dayEnd.UnixMicro()
	}
	res, err := takeRate.Run(ctx, r.c, []string{r.keys.RateBucket(key)}, rate, burst, n, quota, end).Slice()
	if err != nil {
		return RateGrant{}, fmt.Errorf("take rate tokens: %w", err)
	}
	if len(res) != 8 {
		return RateGrant{}, fmt.Errorf("take rate tokens: unexpected reply of %d items", len(res))
	}
	eff, err := rateFloat(res[3])
	if err != nil {
		return RateGrant{}, fmt.Errorf("take rate tokens: rate: %w", err)
	}
	g := RateGrant{
		Granted:   int(rateInt(res[0])),
		NextIn:    rateMicros(res[1]),
		AllIn:     rateMicros(res[2]),
		Rate:      eff,
		PausedFor: rateMicros(res[4]),
		At:        time.UnixMicro(rateInt(res[6])),
	}
	if g.PausedFor > 0 {
		g.PausedUntil = time.UnixMicro(rateInt(res[5]))
		g.PausedForOutage = rateInt(res[7]) == 2
	}
	return g, nil
}

// slowRate cuts a bucket's slowdown factor.
//
// KEYS[1] bucket. ARGV[1] cut (0 < cut < 1: the factor is multiplied by
// it), ARGV[2] floor (the lowest factor, 0 < floor <= 1), ARGV[3] hold (µs:
// a cut within this long after the previous one is ignored), ARGV[4]
// recovery (µs, > 0: how long the factor takes to rise back to 1).
// Returns {applied 0|1, factor now, recovered_in_us}.
var slowRate = redis.NewScript(rateLua + `
local now = now_us()
local cut, floor, hold, rec = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'tk', 'ts', 'r', 'b', 'sf', 'sa', 'sr')
local f0, sa, sr = slowdown(v[5], v[6], v[7])
local f = factor(now, f0, sa, sr)
if f0 and now - sa < hold then
  return {0, num(f), math.max(0, sa + sr - now)}
end
local tk, ts, r, b = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
if tk and ts and r and b then
  -- Refill up to the cut at the factor in force before it.
  if ts > now then ts = now end
  tk = math.min(b, tk + r * (area(now, f0, sa, sr) - area(ts, f0, sa, sr)) / 1e6)
  redis.call('HSET', KEYS[1], 'tk', num(tk), 'ts', int(now))
end
local nf = math.min(f, math.max(floor, f * cut))
redis.call('HSET', KEYS[1], 'sf', num(nf), 'sa', int(now), 'sr', int(rec))
keep_until(KEYS[1], math.floor(now / 1000), math.ceil((now + rec) / 1000) + 1000)
return {1, num(nf), rec}
`)

// RateSlowdown says how SlowRate cuts a bucket's rate.
type RateSlowdown struct {
	// Cut multiplies the current factor, 0 < Cut < 1 (0.5 halves the rate).
	Cut float64
	// Floor is the lowest factor, 0 < Floor <= 1.
	Floor float64
	// Hold is how long after a cut further cuts are ignored, so that a
	// burst of signals from one overload counts once.
	Hold time.Duration
	// Recovery is how long the factor takes to rise linearly from the cut
	// back to 1; it must be at least a microsecond.
	Recovery time.Duration
}

// RateSlowed is the answer of SlowRate.
type RateSlowed struct {
	// Applied is false when the cut was ignored because of Hold.
	Applied bool
	// Factor is the slowdown factor now, in (0, 1].
	Factor float64
	// RecoveredIn is the time until the factor is back at 1, by the Redis
	// clock.
	RecoveredIn time.Duration
}

// SlowRate multiplies key's slowdown factor by s.Cut (not below s.Floor)
// for every process at once, unless the last cut was less than s.Hold ago.
// The factor then rises linearly back to 1 over s.Recovery. The slowdown is
// stored in the bucket, so it holds across processes, and survives the
// bucket's rate changing.
func (r *RDB) SlowRate(ctx context.Context, key string, s RateSlowdown) (RateSlowed, error) {
	res, err := slowRate.Run(ctx, r.c, []string{r.keys.RateBucket(key)},
		s.Cut, s.Floor, s.Hold.Microseconds(), max(1, s.Recovery.Microseconds())).Slice()
	if err != nil {
		return RateSlowed{}, fmt.Errorf("slow rate: %w", err)
	}
	if len(res) != 3 {
		return RateSlowed{}, fmt.Errorf("slow rate: unexpected reply of %d items", len(res))
	}
	f, err := rateFloat(res[1])
	if err != nil {
		return RateSlowed{}, fmt.Errorf("slow rate: factor: %w", err)
	}
	return RateSlowed{Applied: rateInt(res[0]) == 1, Factor: f, RecoveredIn: rateMicros(res[2])}, nil
}

// pauseRate pauses a bucket; a pause is only ever extended here.
//
// KEYS[1] bucket. ARGV[1] until (µs since the epoch), ARGV[2] the field of
// the pause: pu (quota) or po (outage).
// Returns {paused_left_us, paused_until_us}; paused_left_us is 0 when the
// pause (until, or a longer one already stored) has already ended.
var pauseRate = redis.NewScript(rateLua + `
local now = now_us()
local u = tonumber(ARGV[1])
local pu = tonumber(redis.call('HGET', KEYS[1], ARGV[2]))
if pu and pu > u then u = pu end
if u <= now then
  return {0, u}
end
redis.call('HSET', KEYS[1], ARGV[2], int(u))
keep_until(KEYS[1], math.floor(now / 1000), math.ceil(u / 1000) + 1000)
return {u - now, u}
`)

// RatePause is the answer of PauseRate.
type RatePause struct {
	// For is how long the bucket stays paused by the Redis clock; 0 when
	// the pause has already ended.
	For time.Duration
	// Until is when the pause ends, by the Redis clock.
	Until time.Time
}

// PauseRate stops key's bucket from granting tokens until until (by the
// Redis clock), or until ResumeRate. A pause already stored that ends later
// is kept: pauses are only extended, so that processes reporting the same
// quota with slightly different clocks cannot shorten one.
func (r *RDB) PauseRate(ctx context.Context, key string, until time.Time) (RatePause, error) {
	return r.pauseRate(ctx, key, until, "pu")
}

// PauseRateOutage is PauseRate for an outage pause (a circuit breaker
// open on WeChat being unreachable). It is kept apart from the quota
// pause: each is only extended and resumed on its own
// (ResumeRate, ResumeRateOutage), and the bucket grants nothing while
// either lasts.
func (r *RDB) PauseRateOutage(ctx context.Context, key string, until time.Time) (RatePause, error) {
	return r.pauseRate(ctx, key, until, "po")
}

func (r *RDB) pauseRate(ctx context.Context, key string, until time.Time, field string) (RatePause, error) {
	res, err := pauseRate.Run(ctx, r.c, []string{r.keys.RateBucket(key)}, until.UnixMicro(), field).Int64Slice()
	if err != nil {
		return RatePause{}, fmt.Errorf("pause rate: %w", err)
	}
	if len(res) != 2 {
		return RatePause{}, fmt.Errorf("pause rate: unexpected reply of %d items", len(res))
	}
	return RatePause{For: time.Duration(res[0]) * time.Microsecond, Until: time.UnixMicro(res[1])}, nil
}

// ResumeRate ends key's quota pause, if any, and reports whether one was
// stored. An outage pause stays.
func (r *RDB) ResumeRate(ctx context.Context, key string) (bool, error) {
	n, err := r.c.HDel(ctx, r.keys.RateBucket(key), "pu").Result()
	if err != nil {
		return false, fmt.Errorf("resume rate: %w", err)
	}
	return n == 1, nil
}

// ResumeRateOutage ends key's outage pause, if any, and reports whether
// one was stored. A quota pause stays.
func (r *RDB) ResumeRateOutage(ctx context.Context, key string) (bool, error) {
	n, err := r.c.HDel(ctx, r.keys.RateBucket(key), "po").Result()
	if err != nil {
		return false, fmt.Errorf("resume rate outage: %w", err)
	}
	return n == 1, nil
}

// rateInfo reads a bucket as of now without changing it.
//
// KEYS[1] bucket.
// Returns {rate, burst, tokens, factor, recovered_at_us, paused_until_us,
// now_us, outage_until_us}; rate and burst are empty strings when no take
// is recorded, the times 0 when not slowed or not paused.
var rateInfo = redis.NewScript(rateLua + `
local now = now_us()
local v = redis.call('HMGET', KEYS[1], 'tk', 'ts', 'r', 'b', 'sf', 'sa', 'sr', 'pu', 'po')
local f0, sa, sr = slowdown(v[5], v[6], v[7])
local tk, ts, r, b = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
if not (r and b) then
  r, b, tk = nil, nil, 0
elseif tk and ts then
  if ts > now then ts = now end
  tk = math.min(b, tk + r * (area(now, f0, sa, sr) - area(ts, f0, sa, sr)) / 1e6)
else
  tk = b
end
local f = factor(now, f0, sa, sr)
local rec = 0
if f < 1 then rec = sa + sr end
local pu = tonumber(v[8])
if not pu or pu <= now then pu = 0 end
local po = tonumber(v[9])
if not po or po <= now then po = 0 end
return {v[3] or '', v[4] or '', num(tk), num(f), rec, pu, now, po}
`)

// RateInfo describes a bucket at one moment of the Redis clock.
type RateInfo struct {
	// Known is true when a take is recorded, so Rate, Burst and Tokens are
	// set. A bucket without one is full at whatever limit its next take
	// asks for.
	Known bool
	// Rate and Burst are those of the latest take.
	Rate  float64
	Burst int
	// Tokens is what the bucket holds now, fractions included.
	Tokens float64
	// Factor is the slowdown factor now, 1 when not slowed.
	Factor float64
	// RecoveredAt is when Factor is back at 1; zero when it is 1.
	RecoveredAt time.Time
	// PausedUntil is when the quota pause ends; zero when not paused.
	PausedUntil time.Time
	// OutageUntil is when the outage pause ends (PauseRateOutage); zero
	// when there is none.
	OutageUntil time.Time
	// At is the Redis server's time of the reading.
	At time.Time
}

// RateInfo reads key's bucket, for status displays.
func (r *RDB) RateInfo(ctx context.Context, key string) (RateInfo, error) {
	res, err := rateInfo.Run(ctx, r.c, []string{r.keys.RateBucket(key)}).Slice()
	if err != nil {
		return RateInfo{}, fmt.Errorf("rate info: %w", err)
	}
	if len(res) != 8 {
		return RateInfo{}, fmt.Errorf("rate info: unexpected reply of %d items", len(res))
	}
	var info RateInfo
	if s, _ := res[0].(string); s != "" {
		info.Known = true
		if info.Rate, err = strconv.ParseFloat(s, 64); err != nil {
			return RateInfo{}, fmt.Errorf("rate info: rate: %w", err)
		}
		b, _ := res[1].(string)
		if info.Burst, err = strconv.Atoi(b); err != nil {
			return RateInfo{}, fmt.Errorf("rate info: burst: %w", err)
		}
	}
	if info.Tokens, err = rateFloat(res[2]); err != nil {
		return RateInfo{}, fmt.Errorf("rate info: tokens: %w", err)
	}
	if info.Factor, err = rateFloat(res[3]); err != nil {
		return RateInfo{}, fmt.Errorf("rate info: factor: %w", err)
	}
	if t := rateInt(res[4]); t > 0 {
		info.RecoveredAt = time.UnixMicro(t)
	}
	if t := rateInt(res[5]); t > 0 {
		info.PausedUntil = time.UnixMicro(t)
	}
	info.At = time.UnixMicro(rateInt(res[6]))
	if t := rateInt(res[7]); t > 0 {
		info.OutageUntil = time.UnixMicro(t)
	}
	return info, nil
}

func rateInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

func rateMicros(v any) time.Duration { return time.Duration(rateInt(v)) * time.Microsecond }

func rateFloat(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}
